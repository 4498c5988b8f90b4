"""Training pairs (degraded render, target image) for the DriveRestorer, two ways.

    pairs = paper_pairs(capture, FitConfig(iterations=2000))          # needs no ground truth off the log
    pairs = oracle_pairs(scene, bank, scenario_idx, offsets=(1, 2, 3))  # procedural only
    pairs = RestorePairs.concat([pairs_a, pairs_b]); pairs.save("p.npz"); RestorePairs.load("p.npz")

paper mode (ReconDreamer's recipe; also works on real logs): degraded = renders of
deliberately weak reconstructions at the logged poses, target = the logged frames. Weak
means under-trained (`undertrain_fracs` x the full iteration count, all frames) or
sparse-view (every `sparse_every`-th frame only, then rendered at every logged pose, so
most renders are views the weak fit never saw, like a lateral novel view).

oracle mode: degraded = renders of the full reconstruction at the logged poses shifted
laterally by +-d m (`evaluate.shifted_poses`), target = the procedural ground truth there.

Use scenarios of the training split only; held-out scenes are for evaluation.
Every camera image is one pair: images (N, H, W, 3) uint8, `camera` (N,) indexes the
capture's cameras (for per-camera masks, `restorer.far_field_mask`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from render_bridge.recon.capture import LoggedCapture
from render_bridge.recon.fit import FitConfig, fit


@dataclasses.dataclass
class RestorePairs:
    """degraded, target (N, H, W, 3) uint8; camera (N,) int camera index; scenario (N,) int;
    kind (N,) str tag of how the degraded image was made (e.g. 'sparse4', 'iters0.1', 'shift2')."""

    degraded: np.ndarray
    target: np.ndarray
    camera: np.ndarray
    scenario: np.ndarray
    kind: np.ndarray

    def __post_init__(self):
        n = self.degraded.shape[0]
        if self.degraded.shape != self.target.shape or self.degraded.ndim != 4 or self.degraded.shape[-1] != 3:
            raise ValueError(f"RestorePairs: degraded {self.degraded.shape} and target {self.target.shape} "
                             "must both be (N, H, W, 3)")  # fmt: skip
        for name in ("camera", "scenario", "kind"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"RestorePairs: field '{name}' has {len(getattr(self, name))} entries, expected {n}")

    def __len__(self) -> int:
        return self.degraded.shape[0]

    @staticmethod
    def concat(parts: list["RestorePairs"]) -> "RestorePairs":
        if not parts:
            raise ValueError("RestorePairs.concat needs at least one part")
        return RestorePairs(
            *(np.concatenate([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(RestorePairs))
        )

    def save(self, path: str) -> None:
        np.savez_compressed(path, **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)})

    @staticmethod
    def load(path: str) -> "RestorePairs":
        with np.load(path, allow_pickle=False) as d:
            missing = [f.name for f in dataclasses.fields(RestorePairs) if f.name not in d]
            if missing:
                raise ValueError(f"{path}: not a RestorePairs file (missing fields {missing})")
            return RestorePairs(*(d[f.name] for f in dataclasses.fields(RestorePairs)))


def to_uint8(images) -> np.ndarray:
    """float [0, 1] torch / numpy -> uint8 numpy."""
    x = images.detach().float().cpu().numpy() if torch.is_tensor(images) else np.asarray(images, np.float32)
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _flatten(deg: np.ndarray, tgt: np.ndarray, scenario: int, kind: str) -> RestorePairs:
    """(V, C, H, W, 3) pairs -> one pair per camera image."""
    v, c = deg.shape[:2]
    flat = lambda x: x.reshape((v * c,) + x.shape[2:])  # noqa: E731
    return RestorePairs(flat(deg), flat(tgt), np.tile(np.arange(c), v), np.full(v * c, scenario), np.full(v * c, kind))


def subsample(cap: LoggedCapture, frames) -> LoggedCapture:
    """A capture with only `frames` (sorted indices); LiDAR points keep their nearest kept frame."""
    frames = np.asarray(frames, np.int64)
    pf = np.clip(np.searchsorted(frames, cap.point_frames), 0, len(frames) - 1)
    return dataclasses.replace(cap, images=cap.images[frames], ego_poses=cap.ego_poses[frames],
                               actor_poses=cap.actor_poses[frames], timestamps=cap.timestamps[frames],
                               point_frames=pf.astype(cap.point_frames.dtype))  # fmt: skip


def paper_pairs(cap: LoggedCapture, cfg: FitConfig, sparse_every=(4,), undertrain_fracs=(0.1,), device=None,
                progress: bool = False) -> RestorePairs:  # fmt: skip
    """Weak fits of `cap` rendered at its logged poses vs its logged frames (module docstring).
    cfg is the full fit's config; sparse fits use it with the same iteration count."""
    sid = int(cap.meta.get("scenario_idx", -1))
    target = cap.images
    parts = []
    for k in sparse_every:
        frames = np.arange(0, cap.num_frames, int(k))
        if len(frames) < 2:
            raise ValueError(f"sparse_every={k} leaves {len(frames)} of {cap.num_frames} frames: too sparse")
        weak = fit(subsample(cap, frames), dataclasses.replace(cfg, holdout_every=0), progress=progress, device=device)
        parts.append(_flatten(to_uint8(weak.render(cap.ego_poses, cap.actor_poses)), target, sid, f"sparse{k}"))
    for frac in undertrain_fracs:
        its = max(1, int(round(frac * cfg.iterations)))
        weak = fit(cap, dataclasses.replace(cfg, iterations=its, holdout_every=0), progress=progress, device=device)
        parts.append(_flatten(to_uint8(weak.render(cap.ego_poses, cap.actor_poses)), target, sid, f"iters{frac:g}"))
    return RestorePairs.concat(parts)


def oracle_pairs(scene, bank, scenario_idx: int, offsets=(1.0, 2.0, 3.0), frame_stride: int = 1, world_cfg=None,
                 backend: str = "auto") -> RestorePairs:  # fmt: skip
    """Renders of the full reconstruction `scene` at the logged poses (every `frame_stride`-th
    frame) shifted by +-d for d in offsets vs the ground truth there (module docstring)."""
    from render_bridge.procedural_world import WorldConfig
    from render_bridge.recon.evaluate import _scene_rig, shifted_poses
    from render_bridge.recon.groundtruth import render_groundtruth

    if world_cfg is None:
        world_cfg = WorldConfig(**scene.meta["world"]) if scene.meta.get("world") else WorldConfig()
    tl = scene.timeline
    ego = np.asarray(tl["ego_poses"], np.float32)[::frame_stride]
    poses = np.asarray(tl["actor_poses"], np.float32)[::frame_stride]
    rig = _scene_rig(scene)
    parts = []
    for d in offsets:
        for side in (float(d), -float(d)):
            e = shifted_poses(ego, side)
            deg = to_uint8(scene.render(e, poses, backend=backend))
            gt = to_uint8(render_groundtruth(bank, scenario_idx, e, poses, rig, world_cfg, backend, scene.device))
            parts.append(_flatten(deg, gt, scenario_idx, f"shift{side:+g}"))
    return RestorePairs.concat(parts)


def pair_weights(pairs: RestorePairs, Ks: np.ndarray, far_weight: float) -> np.ndarray | None:
    """(N, H, W) float32 loss weights 1 + far_weight x far-field mask of each pair's camera (Ks (C, 3, 3));
    None when far_weight == 0."""
    if far_weight == 0:
        return None
    from render_bridge.recon.restorer import far_field_mask

    h, w = pairs.degraded.shape[1:3]
    masks = np.stack([1.0 + far_weight * far_field_mask(K, h, w) for K in np.asarray(Ks)]).astype(np.float32)
    return masks[pairs.camera]
