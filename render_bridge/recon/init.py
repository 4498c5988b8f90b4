"""Initial Gaussians from a capture's sparse LiDAR: static points stay in the world frame,
points inside a logged actor box at their frame go to that actor in its box frame.
Scales come from the mean distance to the 3 nearest neighbours (as in 3DGS)."""

from __future__ import annotations

import numpy as np
import torch

from render_bridge.recon.capture import LoggedCapture
from render_bridge.recon.geometry import points_in_boxes


def knn_scale(points: torch.Tensor, k: int = 3, chunk: int = 4096) -> torch.Tensor:
    """(P,) mean distance of each point to its k nearest neighbours (within its own set)."""
    if points.shape[0] <= 1:
        return torch.full((points.shape[0],), 0.1, device=points.device)
    out = []
    for s in range(0, points.shape[0], chunk):
        d = torch.cdist(points[s : s + chunk], points)
        kk = min(k + 1, points.shape[0])
        out.append(d.topk(kk, largest=False).values[:, 1:].mean(-1))
    return torch.cat(out)


def init_params(cap: LoggedCapture, max_points: int = 60000, init_opacity: float = 0.5, seed: int = 0,
                device=None, min_scale: float = 0.02, max_scale: float = 3.0) -> dict:  # fmt: skip
    """Raw parameters (see `render_bridge.recon.model`) from the capture's points."""
    if cap.points.shape[0] == 0:
        raise ValueError("the capture has no sparse points (points.npz); fitting needs them for initialisation")
    rng = np.random.default_rng(seed)
    keep = np.arange(cap.points.shape[0])
    if keep.size > max_points:
        keep = np.sort(rng.choice(keep, max_points, replace=False))
    pts = torch.as_tensor(cap.points[keep], device=device)
    poses = torch.as_tensor(cap.actor_poses[cap.point_frames[keep]], device=device)
    slot, local = points_in_boxes(pts, poses, torch.as_tensor(cap.actor_sizes, device=device))
    scales = torch.empty(len(keep), device=device)
    for s in slot.unique():
        m = slot == s
        scales[m] = knn_scale(local[m])
    scales = scales.clamp(min_scale, max_scale)
    colors = torch.as_tensor(cap.point_colors[keep], device=device).clamp(0.02, 0.98)
    n = len(keep)
    quats = torch.zeros((n, 4), device=device)
    quats[:, 0] = 1.0
    return {
        "means": local, "scales": torch.log(scales)[:, None].repeat(1, 3), "quats": quats,
        "opacities": torch.full((n,), float(np.log(init_opacity / (1 - init_opacity))), device=device),
        "colors": torch.logit(colors), "actor": slot.float(),
    }  # fmt: skip
