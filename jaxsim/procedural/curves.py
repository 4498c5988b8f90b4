"""Numpy polyline helpers for the procedural generator (metres, radians, CCW yaw)."""

from __future__ import annotations

import numpy as np


def left_normal(yaw: np.ndarray) -> np.ndarray:
    """Unit left normals (..., 2) of headings (...)."""
    return np.stack([-np.sin(yaw), np.cos(yaw)], axis=-1)


def integrate_heading(kappa: np.ndarray, ds: float) -> tuple[np.ndarray, np.ndarray]:
    """Curve with curvature samples `kappa` (K,) every `ds` m from the origin, heading 0.

    Returns xy (K, 2) and heading (K,) (trapezoidal integration, unwrapped).
    """
    yaw = np.concatenate([[0.0], np.cumsum(0.5 * (kappa[1:] + kappa[:-1]) * ds)])
    # midpoint heading per step keeps arcs on the circle to O(ds^3)
    mid = 0.5 * (yaw[1:] + yaw[:-1])
    steps = np.stack([np.cos(mid), np.sin(mid)], -1) * ds
    xy = np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)])
    return xy, yaw


def arc_lengths(xy: np.ndarray) -> np.ndarray:
    """Cumulative arc length (K,) of a polyline (K, 2), starting at 0."""
    return np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])


def resample(xy: np.ndarray, num: int | None = None, spacing: float | None = None) -> np.ndarray:
    """Resample a polyline (K, 2) to `num` points (or ~`spacing` m apart) evenly by arc length."""
    s = arc_lengths(xy)
    if num is None:
        num = max(int(np.ceil(s[-1] / spacing)) + 1, 2)
    t = np.linspace(0.0, s[-1], num)
    return np.stack([np.interp(t, s, xy[:, 0]), np.interp(t, s, xy[:, 1])], -1)


def bezier_connectors(p0: np.ndarray, yaw0: np.ndarray, p1: np.ndarray, yaw1: np.ndarray, num: int = 48) -> np.ndarray:
    """Cubic Beziers (n, num, 2) from p0 (n, 2) heading yaw0 (n,) to p1 heading yaw1.

    Control arms are 0.5523 x the distance to where the two heading lines meet (a
    quarter circle when the legs are equal), or a third of the chord when they are
    parallel or meet behind; used for intersection connector lanes.
    """
    d0 = np.stack([np.cos(yaw0), np.sin(yaw0)], -1)
    d1 = np.stack([np.cos(yaw1), np.sin(yaw1)], -1)
    chord = p1 - p0
    cross = d0[:, 0] * d1[:, 1] - d0[:, 1] * d1[:, 0]
    safe = np.where(np.abs(cross) > 1e-3, cross, 1.0)
    # p0 + a d0 = p1 - b d1, by Cramer's rule
    a = (chord[:, 0] * d1[:, 1] - chord[:, 1] * d1[:, 0]) / safe
    b = (d0[:, 0] * chord[:, 1] - d0[:, 1] * chord[:, 0]) / safe
    meet = (np.abs(cross) > 1e-3) & (a > 0) & (b > 0)
    third = np.hypot(chord[:, 0], chord[:, 1]) / 3.0
    a, b = np.where(meet, 0.5523 * a, third), np.where(meet, 0.5523 * b, third)
    t = np.linspace(0.0, 1.0, num)[None, :, None]
    c0, c1 = p0 + a[:, None] * d0, p1 - b[:, None] * d1
    return (
        (1 - t) ** 3 * p0[:, None]
        + 3 * (1 - t) ** 2 * t * c0[:, None]
        + 3 * (1 - t) * t**2 * c1[:, None]
        + t**3 * p1[:, None]
    )


def interp_rows(s: np.ndarray, xy: np.ndarray, sq: np.ndarray) -> np.ndarray:
    """Batched linear interpolation: polylines xy (n, k, 2) with increasing arc lengths
    s (n, k), sampled at sq (n, q) (clamped to the ends). Returns (n, q, 2)."""
    j = np.clip((s[:, None, :] <= sq[..., None]).sum(-1) - 1, 0, s.shape[1] - 2)
    s_a, s_b = np.take_along_axis(s, j, 1), np.take_along_axis(s, j + 1, 1)
    f = np.clip((sq - s_a) / np.maximum(s_b - s_a, 1e-9), 0.0, 1.0)[..., None]
    rows = np.arange(len(xy))[:, None]
    return xy[rows, j] * (1 - f) + xy[rows, j + 1] * f


def smoothstep5(x: np.ndarray) -> np.ndarray:
    """Quintic 0 -> 1 ramp on [0, 1] with zero 1st and 2nd derivatives at the ends."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * x * (10.0 + x * (-15.0 + 6.0 * x))


def band_polygon(center: np.ndarray, yaw: np.ndarray, d_lo, d_hi) -> np.ndarray:
    """Closed polygon (2K, 2) of the band between lateral offsets d_lo < d_hi of a curve.

    d_lo/d_hi: scalars or (K,) arrays, measured along the left normal.
    """
    n = left_normal(yaw)
    lo = center + np.asarray(d_lo, float)[..., None] * n
    hi = center + np.asarray(d_hi, float)[..., None] * n
    return np.concatenate([lo, hi[::-1]], axis=0)


def rotation(theta: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s], [s, c]])
