"""Logged sensor data of one drive: camera frames, poses, calibration and sparse LiDAR.

    cap = capture_log(bank, 3, RigConfig("front", 160, 96))      # from the procedural world
    cap.save("runs/cap3"); cap = LoggedCapture.load("runs/cap3")

On-disk layout (a user can fill it with their own frames and poses):

    DIR/capture.json   version 1;
                       width, height: pixels of every image;
                       cameras: [{name, K (3x3 pinhole), cam_to_ego (4x4, OpenCV camera ->
                                  ego frame x forward / y left / z up)}];
                       timestamps (F,) s; ego_poses (F, 3) [x m, y m, yaw rad] world;
                       actor_poses (F, 1 + A, 4) [x, y, yaw, visible] (slot 0 = ego; may be
                                  (F, 1, 4) when nothing moves); actor_sizes (1 + A, 2)
                                  [length, width] m; optional: rig (preset name),
                                  scenario_idx, scenario_id, world (WorldConfig fields).
    DIR/images/{frame:06d}_{camera name}.png   F x C RGB images, all width x height
    DIR/points.npz     optional sparse LiDAR: xyz (P, 3) world m, rgb (P, 3) in [0, 1],
                       frame (P,) int index of the frame it was measured at.

Loading validates everything and names the file and the field at fault.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os

import numpy as np
import torch

from render_bridge import cameras
from render_bridge.procedural_world import WorldConfig
from render_bridge.recon.geometry import actor_sizes, log_actor_poses
from render_bridge.recon.groundtruth import render_groundtruth


@dataclasses.dataclass
class LoggedCapture:
    """Frames of one drive. images (F, C, H, W, 3) uint8; ego_poses (F, 3); actor_poses
    (F, 1 + A, 4); timestamps (F,) s; Ks (C, 3, 3); cam_to_ego (C, 4, 4); camera_names (C,);
    actor_sizes (1 + A, 2); points (P, 3) world, point_colors (P, 3), point_frames (P,)."""

    images: np.ndarray
    ego_poses: np.ndarray
    actor_poses: np.ndarray
    timestamps: np.ndarray
    Ks: np.ndarray
    cam_to_ego: np.ndarray
    camera_names: tuple
    actor_sizes: np.ndarray
    points: np.ndarray
    point_colors: np.ndarray
    point_frames: np.ndarray
    meta: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        validate(self, "LoggedCapture")

    @property
    def num_frames(self) -> int:
        return self.images.shape[0]

    @property
    def size(self) -> tuple:
        """(width, height) of every image."""
        return self.images.shape[3], self.images.shape[2]

    @property
    def rig(self) -> cameras.RigConfig:
        """A `RigConfig` with exactly this capture's calibration (cameras with explicit fx, fy, cx, cy)."""
        return rig_from_calibration(self.camera_names, self.Ks, self.cam_to_ego, *self.size)

    def split(self, holdout_every: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """(train, held-out) frame indices: every `holdout_every`-th frame (from frame 2) is held out."""
        idx = np.arange(self.num_frames)
        held = (idx % holdout_every == 2) if holdout_every > 1 else np.zeros_like(idx, bool)
        return idx[~held], idx[held]

    def save(self, directory: str) -> None:
        """Write the documented layout (module docstring) into `directory`."""
        from PIL import Image

        os.makedirs(os.path.join(directory, "images"), exist_ok=True)
        doc = {
            "version": 1, "width": self.size[0], "height": self.size[1],
            "cameras": [{"name": n, "K": k.tolist(), "cam_to_ego": m.tolist()}
                        for n, k, m in zip(self.camera_names, self.Ks, self.cam_to_ego)],
            "timestamps": self.timestamps.tolist(), "ego_poses": self.ego_poses.tolist(),
            "actor_poses": self.actor_poses.tolist(), "actor_sizes": self.actor_sizes.tolist(), **self.meta,
        }  # fmt: skip
        with open(os.path.join(directory, "capture.json"), "w") as f:
            json.dump(doc, f)
        for i in range(self.num_frames):
            for c, name in enumerate(self.camera_names):
                Image.fromarray(self.images[i, c]).save(os.path.join(directory, "images", f"{i:06d}_{name}.png"))
        np.savez(os.path.join(directory, "points.npz"), xyz=self.points, rgb=self.point_colors, frame=self.point_frames)

    @staticmethod
    def load(directory: str) -> "LoggedCapture":
        from render_bridge.recon.capture_io import load_capture

        return load_capture(directory)


def rig_from_calibration(names, Ks, cam_to_ego, width: int, height: int) -> cameras.RigConfig:
    """`RigConfig` of cameras `names` with intrinsics Ks (C, 3, 3) and mounts cam_to_ego (C, 4, 4)."""
    specs = []
    for name, K, m in zip(names, np.asarray(Ks, np.float64), np.asarray(cam_to_ego, np.float64)):
        r = m[:3, :3] @ cameras.CV_TO_EGO.T  # yaw-pitch-roll (ZYX) rotation of the mount
        yaw, pitch, roll = (
            math.atan2(r[1, 0], r[0, 0]),
            math.asin(-np.clip(r[2, 0], -1, 1)),
            math.atan2(r[2, 1], r[2, 2]),
        )
        fov = math.degrees(2 * math.atan(0.5 * width / K[0, 0]))
        specs.append(cameras.CameraSpec(str(name), fov, float(m[0, 3]), float(m[1, 3]), float(m[2, 3]), math.degrees(yaw),
                                        math.degrees(pitch), math.degrees(roll), float(K[0, 0]), float(K[1, 1]),
                                        float(K[0, 2]), float(K[1, 2])))  # fmt: skip
    return cameras.RigConfig("front", int(width), int(height), cameras=tuple(specs))


def _fail(where: str, field: str, msg: str):
    raise ValueError(f"{where}: field '{field}': {msg}")


def validate(cap: LoggedCapture, where: str) -> None:
    """Shapes, counts and finiteness of every field; errors name `where` and the field."""
    im = cap.images
    if im.ndim != 5 or im.shape[-1] != 3 or im.dtype != np.uint8:
        _fail(where, "images", f"must be (F, C, H, W, 3) uint8, got {im.shape} {im.dtype}")
    f, c = im.shape[:2]
    if f < 1 or c < 1:
        _fail(where, "images", f"needs at least one frame and one camera, got {im.shape}")
    for name, arr, tail in (("ego_poses", cap.ego_poses, (3,)), ("timestamps", cap.timestamps, ())):
        if arr.shape != (f,) + tail:
            _fail(where, name, f"has {arr.shape[0] if arr.ndim else 0} entries of shape {arr.shape[1:]}, "
                               f"expected {(f,) + tail} (one per frame: {f} frames)")  # fmt: skip
    if cap.actor_poses.ndim != 3 or cap.actor_poses.shape[0] != f or cap.actor_poses.shape[2] != 4:
        _fail(where, "actor_poses", f"must be (F={f}, 1 + A, 4), got {cap.actor_poses.shape}")
    if cap.actor_sizes.shape != (cap.actor_poses.shape[1], 2):
        _fail(
            where,
            "actor_sizes",
            f"must be ({cap.actor_poses.shape[1]}, 2) [length, width], got {cap.actor_sizes.shape}",
        )
    if cap.Ks.shape != (c, 3, 3):
        _fail(where, "cameras[].K", f"intrinsics must be ({c}, 3, 3) for {c} cameras, got {cap.Ks.shape}")
    if cap.cam_to_ego.shape != (c, 4, 4):
        _fail(where, "cameras[].cam_to_ego", f"must be ({c}, 4, 4), got {cap.cam_to_ego.shape}")
    if len(cap.camera_names) != c or len(set(cap.camera_names)) != c:
        _fail(where, "cameras[].name", f"needs {c} distinct names, got {list(cap.camera_names)}")
    for name in ("ego_poses", "actor_poses", "timestamps", "Ks", "cam_to_ego", "actor_sizes", "points", "point_colors"):
        arr = getattr(cap, name)
        if not np.all(np.isfinite(arr)):
            bad = np.argwhere(~np.isfinite(arr))[0].tolist()
            _fail(where, name, f"has a non-finite value at index {bad}")
    if np.any(cap.Ks[:, 0, 0] <= 0) or np.any(cap.Ks[:, 1, 1] <= 0):
        _fail(where, "cameras[].K", "focal lengths K[0, 0] and K[1, 1] must be > 0")
    p = cap.points.shape[0]
    if cap.points.shape != (p, 3) or cap.point_colors.shape != (p, 3) or cap.point_frames.shape != (p,):
        _fail(where, "points", f"xyz (P, 3), rgb (P, 3), frame (P,) must agree, got {cap.points.shape}, "
                               f"{cap.point_colors.shape}, {cap.point_frames.shape}")  # fmt: skip
    if p and (cap.point_frames.min() < 0 or cap.point_frames.max() >= f):
        _fail(where, "points.frame", f"frame indices must be in 0..{f - 1}")


def sample_lidar(images, points, alphas, every_frame: int, pixel_stride: int, min_alpha: float = 0.95, seed: int = 0):
    """Sparse points from ground-truth surfaces: every `every_frame`-th frame, a pixel grid of
    stride `pixel_stride` (randomly offset per frame and camera), where the surface is opaque.
    images / points (F, C, H, W, 3), alphas (F, C, H, W) -> xyz (P, 3), rgb (P, 3), frame (P,)."""
    rng = np.random.default_rng(seed)
    xyz, rgb, frame = [], [], []
    for i in range(0, images.shape[0], every_frame):
        for c in range(images.shape[1]):
            oy, ox = rng.integers(pixel_stride, size=2)
            a = alphas[i, c, oy::pixel_stride, ox::pixel_stride]
            keep = a > min_alpha
            xyz.append(points[i, c, oy::pixel_stride, ox::pixel_stride][keep])
            rgb.append(images[i, c, oy::pixel_stride, ox::pixel_stride][keep])
            frame.append(np.full(int(keep.sum()), i, np.int32))
    return np.concatenate(xyz).astype(np.float32), np.concatenate(rgb).astype(np.float32), np.concatenate(frame)


def capture_log(bank, scenario_idx: int, rig: cameras.RigConfig = cameras.RigConfig("front", 160, 96),
                world_cfg: WorldConfig = WorldConfig(), stride: int = 1, device=None, backend: str = "auto",
                lidar_every: int = 2, lidar_stride: int = 6, max_frames: int = 0) -> LoggedCapture:  # fmt: skip
    """Frames the rig recorded along scenario `scenario_idx`'s expert log (every `stride`-th
    log step, 10 Hz at stride 1; at most `max_frames` if > 0), rendered from the procedural
    ground-truth world with every actor posed by the log, plus sparse LiDAR points sampled
    from ground-truth surfaces (see `sample_lidar`)."""
    for name, v in (("stride", stride), ("lidar_every", lidar_every), ("lidar_stride", lidar_stride)):
        if int(v) < 1:
            raise ValueError(f"capture_log: '{name}' must be >= 1, got {v}")
    if max_frames < 0:
        raise ValueError(f"capture_log: 'max_frames' must be >= 0 (0 = all), got {max_frames}")
    valid = np.asarray(bank.ego_valid[scenario_idx])
    steps = np.nonzero(valid)[0][::stride]
    if max_frames:
        steps = steps[:max_frames]
    if len(steps) == 0:
        raise ValueError(f"scenario {scenario_idx} has no valid ego steps")
    ego = np.asarray(bank.ego_traj[scenario_idx], np.float32)[steps, :3]
    poses = log_actor_poses(bank, scenario_idx)[steps]
    imgs, pts, alpha = render_groundtruth(
        bank, scenario_idx, ego, poses, rig, world_cfg, backend, device, return_points=True
    )
    imgs, pts, alpha = (t.cpu().numpy() for t in (imgs, pts, alpha))
    xyz, rgb, frame = sample_lidar(imgs, pts, alpha, lidar_every, lidar_stride)
    dt = float(np.asarray(bank.dt[scenario_idx]))
    meta = {"rig": rig.rig if not rig.cameras else "", "scenario_idx": int(scenario_idx),
            "scenario_id": int(np.asarray(bank.scenario_id[scenario_idx])), "world": dataclasses.asdict(world_cfg)}  # fmt: skip
    return LoggedCapture(
        images=(imgs * 255.0 + 0.5).astype(np.uint8), ego_poses=ego, actor_poses=poses,
        timestamps=(steps * dt).astype(np.float64), Ks=cameras.intrinsics(rig), cam_to_ego=cameras.camera_to_ego(rig),
        camera_names=tuple(s.name for s in rig.specs), actor_sizes=actor_sizes(bank, scenario_idx),
        points=xyz, point_colors=rgb, point_frames=frame, meta=meta,
    )  # fmt: skip


def world_config(cap: LoggedCapture) -> WorldConfig:
    """The procedural WorldConfig a capture was rendered with (defaults if it came from elsewhere)."""
    return WorldConfig(**cap.meta["world"]) if cap.meta.get("world") else WorldConfig()


def images_float(cap: LoggedCapture, device=None) -> torch.Tensor:
    """(F, C, H, W, 3) float32 in [0, 1] on `device`."""
    return torch.as_tensor(cap.images, device=device).float() / 255.0
