"""Exact cell-centre fill of map polygons (with holes) for the drivable-area SDF.

PIL's polygon fill (jaxsim.procedural.rasterize.fill_mask) also sets the pixels its
outline touches, which widens a slanted road by 0.5-1 cell per side; map polygons are
all slanted, so here each row of cell centres is filled between the polygon's edge
crossings (even-odd rule over the exterior and its holes, so holes are cut out), and
the shared `mask_to_sdf` turns the mask into the SDF.
"""

from __future__ import annotations

import numpy as np


def _rings_edges(rings: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    a = np.concatenate([r for r in rings])
    b = np.concatenate([np.roll(r, -1, axis=0) for r in rings])
    return a, b


def polygon_mask(polygons: list, origin: np.ndarray, res: float, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: cell (i, j), centred at origin + (j, i) * res, lies inside any polygon.

    polygons: list of (exterior (n, 2), [holes (m, 2)]) in the same metres as origin.
    """
    H, W = shape
    ys = origin[1] + np.arange(H) * res
    xs = origin[0] + np.arange(W) * res
    mask = np.zeros(shape, bool)
    for ext, holes in polygons:
        a, b = _rings_edges([np.asarray(ext, float)] + [np.asarray(h, float) for h in holes])
        # half-open rule (y0 <= y < y1 or y1 <= y < y0): a vertex on a row counts once
        lo, hi = np.minimum(a[:, 1], b[:, 1]), np.maximum(a[:, 1], b[:, 1])
        rows = np.flatnonzero((ys >= lo.min()) & (ys < hi.max()))
        for i in rows:
            y = ys[i]
            e = (lo <= y) & (y < hi)
            if not e.any():
                continue
            ea, eb = a[e], b[e]
            x = np.sort(ea[:, 0] + (y - ea[:, 1]) * (eb[:, 0] - ea[:, 0]) / (eb[:, 1] - ea[:, 1]))
            mask[i] |= (np.searchsorted(x, xs, side="right") % 2) == 1
    return mask
