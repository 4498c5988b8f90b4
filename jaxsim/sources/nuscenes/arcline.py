"""nuScenes map-expansion `arcline_path_3` curves and quaternion yaw.

An arcline_path_3 record is a Dubins-like curve: `start_pose` [x, y, yaw], a `shape`
of three letters (L = left arc, S = straight, R = right arc), a `radius` (m) shared by
the arcs, and `segment_length` (3,) metres. A lane is a list of such paths. Poses along
a segment follow the SE(2) exponential of a unit-speed motion with curvature
sign / radius, which is what the devkit's `arcline_path_utils.discretize_lane` does;
here it is sampled at exact arc lengths (numpy, vectorised per segment).
"""

from __future__ import annotations

import math

import numpy as np

_SIGN = {"L": 1.0, "S": 0.0, "R": -1.0}


def quaternion_yaw(q) -> float:
    """Yaw (rad, CCW about +z) of a quaternion [w, x, y, z] (nuScenes order)."""
    w, x, y, z = (float(v) for v in q)
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def segment_signs(shape: str) -> tuple[float, float, float]:
    """Curvature signs of the three segments (+1 left, 0 straight, -1 right)."""
    if len(shape) != 3 or any(c not in _SIGN for c in shape):
        raise ValueError(f"arcline_path_3 'shape' is {shape!r}; expected three letters of L, S, R (e.g. 'LSR')")
    return tuple(_SIGN[c] for c in shape)


def _advance(pose: np.ndarray, kappa: float, s: np.ndarray) -> np.ndarray:
    """Poses (n, 3) reached from `pose` (3,) after arc lengths s (n,) at curvature kappa."""
    x0, y0, th0 = pose
    if abs(kappa) < 1e-9:
        dx, dy, dth = s, np.zeros_like(s), np.zeros_like(s)
    else:
        dth = kappa * s
        dx, dy = np.sin(dth) / kappa, (1.0 - np.cos(dth)) / kappa
    c, si = math.cos(th0), math.sin(th0)
    return np.stack([x0 + c * dx - si * dy, y0 + si * dx + c * dy, th0 + dth], -1)


def path_length(path: dict) -> float:
    return float(sum(path["segment_length"]))


def poses_at(path: dict, s: np.ndarray) -> np.ndarray:
    """Poses (n, 3) [x, y, yaw] at arc lengths s (n,) along one arcline_path_3 (clamped)."""
    lengths = np.asarray(path["segment_length"], float)
    if lengths.shape != (3,) or (lengths < 0).any():
        raise ValueError(
            f"arcline_path_3 'segment_length' must be 3 non-negative numbers, got {path['segment_length']!r}"
        )
    radius = float(path["radius"])
    if radius <= 0:
        raise ValueError(f"arcline_path_3 'radius' must be positive, got {radius!r}")
    signs = segment_signs(path["shape"])
    s = np.clip(np.asarray(s, float), 0.0, lengths.sum())
    out = np.zeros((len(s), 3))
    start = np.asarray(path["start_pose"], float)[:3]
    edges = np.concatenate([[0.0], np.cumsum(lengths)])
    for k in range(3):
        kappa = signs[k] / radius
        last = k == 2
        sel = (s >= edges[k]) & ((s < edges[k + 1]) | last)
        out[sel] = _advance(start, kappa, s[sel] - edges[k])
        start = _advance(start, kappa, np.array([lengths[k]]))[0]
    out[:, 2] = (out[:, 2] + np.pi) % (2 * np.pi) - np.pi
    return out


def discretize_lane(paths: list[dict], resolution: float = 0.5) -> np.ndarray:
    """Poses (K, 3) along a lane (a list of arcline paths), about `resolution` m apart;
    each path contributes its end points (duplicates at joints are removed)."""
    chunks = []
    for path in paths:
        length = path_length(path)
        n = max(int(math.ceil(length / resolution)) + 1, 2)
        chunks.append(poses_at(path, np.linspace(0.0, length, n)))
    if not chunks:
        return np.zeros((0, 3))
    poses = np.concatenate(chunks)
    keep = np.concatenate([[True], np.hypot(*np.diff(poses[:, :2], axis=0).T) > 1e-6])
    return poses[keep]
