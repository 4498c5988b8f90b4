"""Planar geometry in JAX: frames, oriented boxes, separating-axis overlap, SDF lookup,
and closest points on polylines. All functions broadcast over leading dims."""

from __future__ import annotations

import jax.numpy as jnp


def wrap_angle(a: jnp.ndarray) -> jnp.ndarray:
    """Wrap radians to [-pi, pi)."""
    return (a + jnp.pi) % (2.0 * jnp.pi) - jnp.pi


def to_local(points: jnp.ndarray, pose: jnp.ndarray) -> jnp.ndarray:
    """World points (..., 2) into the frame of `pose` [x, y, yaw] (..., 3) (x forward, y left)."""
    c, s = jnp.cos(pose[..., 2:3]), jnp.sin(pose[..., 2:3])
    d = points - pose[..., :2]
    return jnp.concatenate([c * d[..., :1] + s * d[..., 1:2], -s * d[..., :1] + c * d[..., 1:2]], axis=-1)


def to_world(points: jnp.ndarray, pose: jnp.ndarray) -> jnp.ndarray:
    """Inverse of `to_local`."""
    c, s = jnp.cos(pose[..., 2:3]), jnp.sin(pose[..., 2:3])
    x, y = points[..., :1], points[..., 1:2]
    return jnp.concatenate([c * x - s * y, s * x + c * y], axis=-1) + pose[..., :2]


def box_corners(box: jnp.ndarray) -> jnp.ndarray:
    """Corners (..., 4, 2) of boxes [x, y, yaw, length, width] (..., 5), counter-clockwise."""
    half = 0.5 * box[..., 3:5]
    signs = jnp.array([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]])
    local = signs * half[..., None, :]
    return to_world(local, box[..., None, :3])


def box_overlap(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
    """Separating-axis test for oriented boxes [x, y, yaw, length, width]; touching counts.

    Args: a (..., 5), b (..., 5) broadcastable. Returns bool (...).
    Uses the 4 candidate axes (2 edge normals per box) with projected half extents, so
    no corners are materialised: ~40 flops a pair.
    """
    d = b[..., :2] - a[..., :2]
    ca, sa = jnp.cos(a[..., 2]), jnp.sin(a[..., 2])
    cb, sb = jnp.cos(b[..., 2]), jnp.sin(b[..., 2])
    ha_l, ha_w = 0.5 * a[..., 3], 0.5 * a[..., 4]
    hb_l, hb_w = 0.5 * b[..., 3], 0.5 * b[..., 4]
    # |cos| of angles between the axes of a and b
    c_ll = jnp.abs(ca * cb + sa * sb)  # a.x . b.x
    c_lw = jnp.abs(-ca * sb + sa * cb)  # a.x . b.y
    # (a.y . b.x) = |sin(diff)| = c_lw, (a.y . b.y) = c_ll
    sep_ax = jnp.abs(d[..., 0] * ca + d[..., 1] * sa) > ha_l + hb_l * c_ll + hb_w * c_lw
    sep_ay = jnp.abs(-d[..., 0] * sa + d[..., 1] * ca) > ha_w + hb_l * c_lw + hb_w * c_ll
    sep_bx = jnp.abs(d[..., 0] * cb + d[..., 1] * sb) > hb_l + ha_l * c_ll + ha_w * c_lw
    sep_by = jnp.abs(-d[..., 0] * sb + d[..., 1] * cb) > hb_w + ha_l * c_lw + ha_w * c_ll
    return ~(sep_ax | sep_ay | sep_bx | sep_by)


def box_clearance(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
    """Smooth proxy of the gap between boxes: the largest separating-axis margin (m).

    Positive when separated (a lower bound on the true distance), negative when
    overlapping. Differentiable almost everywhere; used by adversary search.
    """
    d = b[..., :2] - a[..., :2]
    ca, sa = jnp.cos(a[..., 2]), jnp.sin(a[..., 2])
    cb, sb = jnp.cos(b[..., 2]), jnp.sin(b[..., 2])
    ha_l, ha_w = 0.5 * a[..., 3], 0.5 * a[..., 4]
    hb_l, hb_w = 0.5 * b[..., 3], 0.5 * b[..., 4]
    c_ll = jnp.abs(ca * cb + sa * sb)
    c_lw = jnp.abs(-ca * sb + sa * cb)
    m = jnp.stack(
        [
            jnp.abs(d[..., 0] * ca + d[..., 1] * sa) - (ha_l + hb_l * c_ll + hb_w * c_lw),
            jnp.abs(-d[..., 0] * sa + d[..., 1] * ca) - (ha_w + hb_l * c_lw + hb_w * c_ll),
            jnp.abs(d[..., 0] * cb + d[..., 1] * sb) - (hb_l + ha_l * c_ll + ha_w * c_lw),
            jnp.abs(-d[..., 0] * sb + d[..., 1] * cb) - (hb_w + ha_l * c_lw + ha_w * c_ll),
        ],
        axis=-1,
    )
    return jnp.max(m, axis=-1)


def sdf_lookup(sdf: jnp.ndarray, origin: jnp.ndarray, res: jnp.ndarray, points: jnp.ndarray, index=None) -> jnp.ndarray:
    """Bilinear, differentiable lookup of a signed-distance grid.

    Args:
      sdf: (H, W) grid, cell (i, j) centred at origin + (j, i) * res; or a bank of grids
        (N, H, W) together with `index` (), which reads only the 4 cells needed instead of
        gathering a whole grid per env.
      origin: (2,), res: () metres per cell.
      points: (..., 2) world points.
    Returns: (...) signed distance; outside the grid the border value plus the distance
    to the grid edge (so leaving the map reads as off-road).
    """
    h, w = sdf.shape[-2:]
    g = (points - origin) / res
    gx = jnp.clip(g[..., 0], 0.0, w - 1.0)
    gy = jnp.clip(g[..., 1], 0.0, h - 1.0)
    x0 = jnp.clip(jnp.floor(gx).astype(jnp.int32), 0, w - 2)
    y0 = jnp.clip(jnp.floor(gy).astype(jnp.int32), 0, h - 2)
    fx, fy = gx - x0, gy - y0
    read = (lambda i, j: sdf[i, j]) if index is None else (lambda i, j: sdf[index, i, j])
    v00, v01 = read(y0, x0), read(y0, x0 + 1)
    v10, v11 = read(y0 + 1, x0), read(y0 + 1, x0 + 1)
    val = (v00 * (1 - fx) + v01 * fx) * (1 - fy) + (v10 * (1 - fx) + v11 * fx) * fy
    outside = jnp.sqrt((g[..., 0] - gx) ** 2 + (g[..., 1] - gy) ** 2 + 1e-12) * res
    return val + outside


def closest_on_polyline(
    points: jnp.ndarray, query: jnp.ndarray, num_valid: jnp.ndarray | None = None, extend_end: bool = False
):
    """Closest point on a polyline to `query`.

    Args:
      points: (K, 2) vertices; only the first `num_valid` (() int, >= 2) are used.
      query: (2,) point.
      extend_end: treat the last valid segment as a ray (beyond the end of a log the
        reference continues straight ahead).
    Returns: (distance () m, segment index () int32, fraction along segment ()).
    """
    k = points.shape[0]
    a, b = points[:-1], points[1:]
    ab = b - a
    len2 = jnp.sum(ab * ab, axis=-1)
    t = jnp.sum((query - a) * ab, axis=-1) / jnp.maximum(len2, 1e-9)
    seg = jnp.arange(k - 1)
    last = (k - 2) if num_valid is None else num_valid - 2
    hi = jnp.where((seg == last) & extend_end, jnp.inf, 1.0)
    t = jnp.clip(t, 0.0, hi)
    proj = a + t[:, None] * ab
    d2 = jnp.sum((proj - query) ** 2, axis=-1)
    if num_valid is not None:
        d2 = jnp.where(seg <= last, d2, jnp.inf)
    i = jnp.argmin(d2)
    return jnp.sqrt(d2[i] + 1e-12), i.astype(jnp.int32), t[i]
