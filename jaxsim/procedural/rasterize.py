"""Drivable-area SDF: closed forms where the road is simple, else fill + distance transform.

Straight roads (bands along a line) and the four-way intersection (a cross with
rounded kerbs) have exact closed-form SDFs, evaluated per cell. Other roads (curves,
merges) are rasterised:

the grid (H, W) has cell (i, j) centred at origin + (j, i) * res (the Scenario
convention); polygons are filled with PIL at cell centres; the distance transform runs
once, to the two-cell band straddling the boundary (inside cells touching outside ones
and vice versa), and half a cell is added because the boundary lies between the two:
sdf = -(d + res/2) inside, +(d + res/2) outside, in metres, then a 3x3 mean smooths
the staircase of slanted edges (error ~res/4 on straight edges).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage


def grid_origin(path_xy: np.ndarray, size: int, res: float) -> np.ndarray:
    """Origin (2,) of a size x size grid centred on the bounding box of path_xy (T, 2)."""
    center = 0.5 * (path_xy.min(0) + path_xy.max(0))
    return center - 0.5 * (size - 1) * res


def fill_mask(polygons: list[np.ndarray], origin: np.ndarray, res: float, shape: tuple[int, int]) -> np.ndarray:
    """Boolean (H, W) mask of cells whose centres lie in any polygon (n, 2) (world metres)."""
    img = Image.new("1", (shape[1], shape[0]), 0)
    draw = ImageDraw.Draw(img)
    for poly in polygons:
        px = (np.asarray(poly) - origin) / res  # PIL (x, y) = (column j, row i)
        draw.polygon([tuple(p) for p in px.tolist()], fill=1)
    return np.asarray(img, dtype=bool)


def mask_to_sdf(mask: np.ndarray, res: float) -> np.ndarray:
    """Signed distance (H, W) float32 in metres, negative inside `mask`."""
    if mask.all() or not mask.any():
        far = float(max(mask.shape)) * res
        return np.full(mask.shape, -far if mask.all() else far, np.float32)
    edge = np.zeros_like(mask)
    # cells with a 4-neighbour of the other kind form the band around the boundary
    diff_v = mask[1:] != mask[:-1]
    diff_h = mask[:, 1:] != mask[:, :-1]
    edge[1:] |= diff_v
    edge[:-1] |= diff_v
    edge[:, 1:] |= diff_h
    edge[:, :-1] |= diff_h
    d = ndimage.distance_transform_edt(~edge)
    sdf = np.where(mask, -(d + 0.5), d + 0.5)
    # a 3x3 mean keeps linear fields (a straight edge's true SDF) and averages out the
    # cell staircase of a slanted edge; cells keep their sign (the boundary stays put)
    smooth = ndimage.uniform_filter(sdf, size=3, mode="nearest")
    sdf = np.where(mask, np.minimum(smooth, -0.05), np.maximum(smooth, 0.05))
    return (sdf * res).astype(np.float32)


def drivable_sdf(polygons: list[np.ndarray], origin: np.ndarray, res: float, size: int) -> np.ndarray:
    return mask_to_sdf(fill_mask(polygons, origin, res, (size, size)), res)


def _grid(origin: np.ndarray, res: float, size: int):
    c = np.arange(size) * res
    return np.meshgrid(origin[0] + c, origin[1] + c)  # X, Y (H, W): row i is y, column j is x


def bands_sdf(X, Y, point, heading: float, bands) -> np.ndarray:
    """Union of straight bands lo <= d <= hi, d the offset along the left normal of the
    line through `point` with `heading`: exact SDF (bands are disjoint)."""
    d = -(X - point[0]) * np.sin(heading) + (Y - point[1]) * np.cos(heading)
    return np.min([np.maximum(lo - d, d - hi) for lo, hi in bands], axis=0)


def cross_sdf(X, Y, center, heading: float, half_width: float, kerb: float) -> np.ndarray:
    """Two crossing roads of half-width W whose corners are rounded with radius rk: the
    complement of four corner blocks, each a quadrant grown by a disc (exact SDF)."""
    dx, dy = X - center[0], Y - center[1]
    c, s = np.cos(heading), np.sin(heading)
    a = half_width + kerb
    x, y = np.abs(c * dx + s * dy) - a, np.abs(-s * dx + c * dy) - a
    quadrant = np.hypot(np.minimum(x, 0.0), np.minimum(y, 0.0)) - np.maximum(np.minimum(x, y), 0.0)
    return kerb - quadrant


def road_sdf(road, origin: np.ndarray, res: float, size: int) -> np.ndarray:
    """SDF (size, size) float32 of a RoadMap: its closed form if it has one, else raster."""
    kind, params = road.sdf_shape if road.sdf_shape else (None, None)
    if kind == "bands":
        return bands_sdf(*_grid(origin, res, size), *params).astype(np.float32)
    if kind == "cross":
        return cross_sdf(*_grid(origin, res, size), *params).astype(np.float32)
    return drivable_sdf(road.polygons, origin, res, size)
