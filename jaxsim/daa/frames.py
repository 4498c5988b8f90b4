"""Lane frames for the DAA: signed lateral offset and lane heading of a point w.r.t. a
lane centerline polyline of the scenario (beyond the polyline's end the lane is
continued straight at both ends, so a manoeuvre near a lane's end stays defined)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def lane_frame(points: jnp.ndarray, num_points: jnp.ndarray, xy: jnp.ndarray):
    """Lateral offset and heading of `xy` (2,) w.r.t. lane `points` (P, 2) (`num_points` valid).

    Returns (d () m, + = left of the lane direction; lane_yaw () rad at the closest point).
    Cheap form for the per-step controller: the nearest vertex, then the better of its
    two segments (exact for polylines whose vertices are closer together than the
    distance to the lane; the end segments extend straight beyond both ends).
    """
    P = points.shape[0]
    n = jnp.clip(num_points, 2, P)
    d2 = jnp.sum((points - xy) ** 2, axis=-1)
    d2 = jnp.where(jnp.arange(P) < n, d2, jnp.inf)
    k = jnp.argmin(d2)
    segs = jnp.clip(jnp.stack([k - 1, k]), 0, n - 2)
    a, b = points[segs], points[segs + 1]
    ab = b - a
    t = jnp.sum((xy - a) * ab, axis=-1) / jnp.maximum(jnp.sum(ab * ab, axis=-1), 1e-9)
    t = jnp.clip(t, jnp.where(segs == 0, -jnp.inf, 0.0), jnp.where(segs == n - 2, jnp.inf, 1.0))
    proj = a + t[:, None] * ab
    e2 = jnp.sum((proj - xy) ** 2, axis=-1)
    j = jnp.argmin(e2)
    seg = ab[j]
    rel = xy - a[j]
    cross = seg[0] * rel[1] - seg[1] * rel[0]
    dist = jnp.sqrt(e2[j] + 1e-12)
    return jnp.where(cross >= 0, dist, -dist), jnp.arctan2(seg[1], seg[0])


def nearest_lane(lane_points: jnp.ndarray, lane_num_points: jnp.ndarray, pose: jnp.ndarray) -> jnp.ndarray:
    """Index () int32 of the closest lane whose direction is within 60 deg of pose's yaw (-1: none).

    lane_points (L, P, 2); lane_num_points (L,); pose [x, y, yaw, ...]. Used at reset only
    (cost L x P), when the log gives no lane for the ego.
    """
    d, yaw = jax.vmap(lane_frame, in_axes=(0, 0, None))(lane_points, lane_num_points, pose[:2])
    aligned = jnp.cos(yaw - pose[2]) > 0.5
    score = jnp.where(aligned & (lane_num_points >= 2), jnp.abs(d), jnp.inf)
    best = jnp.argmin(score)
    return jnp.where(jnp.isfinite(score[best]), best, -1).astype(jnp.int32)
