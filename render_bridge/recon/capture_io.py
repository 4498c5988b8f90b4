"""Reading the on-disk capture layout (documented in `render_bridge.recon.capture`) with
validation: missing files, missing intrinsics, frame / pose count mismatches, mixed
image sizes and non-finite poses are errors that name the file and the field."""

from __future__ import annotations

import json
import os
import re

import numpy as np

from render_bridge.recon.capture import LoggedCapture, validate

IMAGE_NAME = re.compile(r"^(\d{6})_(.+)\.png$")


def _array(doc: dict, path: str, field: str, shape_tail: tuple | None = None, dtype=np.float64) -> np.ndarray:
    if field not in doc:
        raise ValueError(f"{path}: field '{field}' is missing")
    try:
        arr = np.asarray(doc[field], dtype)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: field '{field}' is not a numeric array ({err})") from None
    if shape_tail is not None and (arr.ndim != 1 + len(shape_tail) or arr.shape[1:] != shape_tail):
        raise ValueError(
            f"{path}: field '{field}' must have shape (N, {', '.join(map(str, shape_tail))}), got {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0].tolist()
        raise ValueError(f"{path}: field '{field}' has a non-finite value at index {bad}")
    return arr


def load_capture(directory: str) -> LoggedCapture:
    """A validated `LoggedCapture` from `directory`."""
    from PIL import Image

    path = os.path.join(directory, "capture.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no capture.json (see render_bridge.recon.capture for the layout)")
    with open(path) as f:
        try:
            doc = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from None
    if doc.get("version", 1) != 1:
        raise ValueError(f"{path}: field 'version' is {doc.get('version')!r}; supported: 1")
    cams = doc.get("cameras")
    if not isinstance(cams, list) or not cams:
        raise ValueError(f"{path}: field 'cameras' must be a non-empty list of {{name, K, cam_to_ego}}")
    names, Ks, c2e = [], [], []
    for i, cam in enumerate(cams):
        for key in ("name", "K", "cam_to_ego"):
            if key not in cam:
                raise ValueError(
                    f"{path}: field 'cameras[{i}].{key}' is missing" + (" (intrinsics)" if key == "K" else "")
                )
        names.append(str(cam["name"]))
        Ks.append(_array(cam, path, "K"))
        c2e.append(_array(cam, path, "cam_to_ego"))
        if Ks[-1].shape != (3, 3) or c2e[-1].shape != (4, 4):
            raise ValueError(f"{path}: field 'cameras[{i}]': K must be 3x3 and cam_to_ego 4x4")
    ego = _array(doc, path, "ego_poses", (3,))
    f = ego.shape[0]
    ts = _array(doc, path, "timestamps")
    poses = _array(doc, path, "actor_poses") if "actor_poses" in doc else np.zeros((f, 1, 4))
    sizes = _array(doc, path, "actor_sizes") if "actor_sizes" in doc else np.full((poses.shape[1], 2), 4.5)
    for field, arr in (("timestamps", ts), ("actor_poses", poses)):
        if arr.shape[:1] != (f,):
            raise ValueError(
                f"{path}: field '{field}' has {arr.shape[0] if arr.ndim else 0} entries but 'ego_poses' has {f}"
            )
    width, height = int(doc.get("width", 0)), int(doc.get("height", 0))
    img_dir = os.path.join(directory, "images")
    files = sorted(os.listdir(img_dir)) if os.path.isdir(img_dir) else []
    frames = sorted({int(m.group(1)) for m in map(IMAGE_NAME.match, files) if m})
    if len(frames) != f or frames != list(range(f)):
        raise ValueError(f"{img_dir}: images of {len(frames)} frames (numbers {frames[:3]}...) but {path} field "
                         f"'ego_poses' has {f} poses; expected frames 000000..{f - 1:06d}")  # fmt: skip
    images = np.empty((f, len(names), height, width, 3), np.uint8)
    for i in range(f):
        for c, name in enumerate(names):
            p = os.path.join(img_dir, f"{i:06d}_{name}.png")
            if not os.path.isfile(p):
                raise ValueError(f"{p}: missing image of frame {i}, camera {name!r}")
            im = np.asarray(Image.open(p).convert("RGB"))
            if im.shape[:2] != (height, width):
                raise ValueError(f"{p}: image is {im.shape[1]}x{im.shape[0]}, but {path} fields 'width', 'height' "
                                 f"say {width}x{height} (all images must share one size)")  # fmt: skip
            images[i, c] = im
    pts_path = os.path.join(directory, "points.npz")
    if os.path.isfile(pts_path):
        with np.load(pts_path, allow_pickle=False) as z:
            for key in ("xyz", "rgb", "frame"):
                if key not in z:
                    raise ValueError(f"{pts_path}: field '{key}' is missing")
            xyz, rgb, pf = z["xyz"].astype(np.float32), z["rgb"].astype(np.float32), z["frame"].astype(np.int32)
    else:
        xyz, rgb, pf = np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32), np.zeros((0,), np.int32)
    meta = {k: doc[k] for k in ("rig", "scenario_idx", "scenario_id", "world") if k in doc}
    cap = LoggedCapture.__new__(LoggedCapture)
    cap.__dict__.update(images=images, ego_poses=ego.astype(np.float32), actor_poses=poses.astype(np.float32),
                        timestamps=ts, Ks=np.asarray(Ks, np.float32), cam_to_ego=np.asarray(c2e, np.float32),
                        camera_names=tuple(names), actor_sizes=sizes.astype(np.float32), points=xyz,
                        point_colors=rgb, point_frames=pf, meta=meta)  # fmt: skip
    validate(cap, path)
    return cap
