"""Numpy builders of Gaussian primitives for the procedural world (no torch here).

Every builder returns a dict of numpy float32 arrays in `GaussianSet` layout: means
(n, 3), quats (n, 4) wxyz, scales (n, 3) m, opacities (n,), colors (n, 3) RGB.
"""

from __future__ import annotations

import numpy as np

KEYS = ("means", "quats", "scales", "opacities", "colors")


def gaussians(means, scales, colors, opacity=0.95, yaw=None) -> dict:
    """Wrap arrays (n, 3) into a Gaussian dict; yaw (n,) rad rotates each about +z."""
    n = len(means)
    quats = np.zeros((n, 4), np.float32)
    if yaw is None:
        quats[:, 0] = 1.0
    else:
        quats[:, 0], quats[:, 3] = np.cos(0.5 * yaw), np.sin(0.5 * yaw)
    return {
        "means": np.asarray(means, np.float32).reshape(n, 3),
        "quats": quats,
        "scales": np.broadcast_to(np.asarray(scales, np.float32), (n, 3)).copy(),
        "opacities": np.broadcast_to(np.asarray(opacity, np.float32), (n,)).copy(),
        "colors": np.clip(np.broadcast_to(np.asarray(colors, np.float32), (n, 3)), 0.0, 1.0).copy(),
    }


def merge(parts: list[dict]) -> dict:
    parts = [p for p in parts if len(p["means"])]
    if not parts:
        return gaussians(np.zeros((0, 3)), np.zeros(3), np.zeros(3))
    return {k: np.concatenate([p[k] for p in parts]) for k in KEYS}


def subsample(g: dict, n: int, rng: np.random.Generator) -> dict:
    """Keep n Gaussians chosen uniformly at random (all if there are fewer)."""
    if len(g["means"]) <= n:
        return g
    keep = np.sort(rng.choice(len(g["means"]), n, replace=False))
    return {k: v[keep] for k, v in g.items()}


def jitter_colors(g: dict, rng: np.random.Generator, amount: float = 0.06) -> dict:
    """Per-Gaussian brightness noise so flat surfaces show texture."""
    f = 1.0 + amount * rng.standard_normal((len(g["colors"]), 1)).astype(np.float32)
    return dict(g, colors=np.clip(g["colors"] * f, 0.0, 1.0))


def box_surface(
    center, size, yaw: float, spacing: float, color, opacity=0.97, faces=("x+", "x-", "y+", "y-", "z+")
) -> dict:
    """Flat Gaussians tiling the faces of a box.

    center (3,) m of the box centre, size (3,) [length along its x, width, height] m,
    yaw rad about +z. Each Gaussian is a disc of std 0.6 x the grid step, thin along
    the face normal, so a face reads as opaque from outside.
    """
    size = np.maximum(np.asarray(size, np.float64), 1e-3)
    half = 0.5 * size
    parts = []
    for face in faces:
        axis = "xyz".index(face[0])
        sign = 1.0 if face[1] == "+" else -1.0
        u, v = [a for a in range(3) if a != axis]
        nu = max(1, int(np.ceil(size[u] / spacing)))
        nv = max(1, int(np.ceil(size[v] / spacing)))
        gu = (np.arange(nu) + 0.5) / nu * size[u] - half[u]
        gv = (np.arange(nv) + 0.5) / nv * size[v] - half[v]
        uu, vv = np.meshgrid(gu, gv, indexing="ij")
        p = np.zeros((nu * nv, 3))
        p[:, axis] = sign * half[axis]
        p[:, u], p[:, v] = uu.ravel(), vv.ravel()
        sc = np.zeros(3)
        sc[axis] = min(0.03, 0.2 * spacing)
        sc[u], sc[v] = 0.6 * size[u] / nu, 0.6 * size[v] / nv
        parts.append((p, np.broadcast_to(sc, p.shape)))
    pts = np.concatenate([p for p, _ in parts])
    scales = np.concatenate([s for _, s in parts])
    c, s = np.cos(yaw), np.sin(yaw)
    world = np.stack([c * pts[:, 0] - s * pts[:, 1], s * pts[:, 0] + c * pts[:, 1], pts[:, 2]], -1) + np.asarray(center)
    return gaussians(world, scales, color, opacity, np.full(len(pts), yaw))


def box_area(size, faces: int = 5) -> float:
    length, w, h = size
    return length * w * (faces - 4) + 2 * (length * h + w * h)


def resample_polyline(points: np.ndarray, step: float):
    """Points every `step` m along a polyline (n, 2) -> (positions (k, 2), unit tangents (k, 2), arc length (k,))."""
    seg = np.diff(points, axis=0)
    length = np.linalg.norm(seg, axis=1)
    keep = length > 1e-6
    if not np.any(keep):
        return np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0)
    seg, length, start = seg[keep], length[keep], points[:-1][keep]
    cum = np.concatenate([[0.0], np.cumsum(length)])
    s = np.arange(0.5 * step, cum[-1], step)
    i = np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(seg) - 1)
    t = (s - cum[i]) / length[i]
    tangent = seg[i] / length[i][:, None]
    return start[i] + t[:, None] * seg[i], tangent, s


def sample_grid(grid: np.ndarray, origin, res: float, pts: np.ndarray) -> np.ndarray:
    """Bilinear lookup of a (H, W) grid whose cell (i, j) centre is origin + (j, i) * res; clamps at the edges."""
    h, w = grid.shape
    fx = np.clip((pts[:, 0] - origin[0]) / res, 0, w - 1)
    fy = np.clip((pts[:, 1] - origin[1]) / res, 0, h - 1)
    x0, y0 = (
        np.minimum(np.floor(fx).astype(int), w - 2 if w > 1 else 0),
        np.minimum(np.floor(fy).astype(int), h - 2 if h > 1 else 0),
    )
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    ax, ay = fx - x0, fy - y0
    top = grid[y0, x0] * (1 - ax) + grid[y0, x1] * ax
    bot = grid[y1, x0] * (1 - ax) + grid[y1, x1] * ax
    return top * (1 - ay) + bot * ay


def point_to_polylines(pts: np.ndarray, lines: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Distance (k, L) from points (k, 2) to each polyline lines (L, P, 2) with counts (L,) valid points."""
    a, b = lines[:, :-1], lines[:, 1:]  # (L, P-1, 2)
    valid = np.arange(lines.shape[1] - 1)[None] < (counts[:, None] - 1)
    ab = b - a
    denom = np.maximum(np.sum(ab * ab, -1), 1e-12)
    out = np.empty((len(pts), len(lines)), np.float32)
    for start in range(0, len(pts), 512):  # chunks bound memory (k x L x P)
        p = pts[start : start + 512, None, None]
        t = np.clip(np.sum((p - a) * ab, -1) / denom, 0.0, 1.0)
        d = np.linalg.norm(p - (a + t[..., None] * ab), axis=-1)
        out[start : start + 512] = np.min(np.where(valid, d, np.inf), axis=-1)
    return out
