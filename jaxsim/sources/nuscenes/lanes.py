"""Lane slots of one clip: the L map lanes nearest the ego path, cropped to the SDF grid
and resampled, with neighbours, successors and the ego's lane per step (numpy, local m).

Neighbours come from geometry (the map has no left/right links): lane j is left (right)
of lane i when enough of i lies beside j, parallel within NEIGHBOUR_MAX_DYAW, at a
lateral offset in NEIGHBOUR_OFFSET; pairs are matched greedily, nearest first, so
`lane_left[lane_right[i]] == i`. Successors come from the map's `connectivity`
(outgoing lanes that are also in the clip), else from end-to-start contact.
"""

from __future__ import annotations

import numpy as np

from jaxsim.procedural.curves import arc_lengths, left_normal, resample
from jaxsim.sources.nuscenes.maps import MapData

MAX_SUCC = 3
NEIGHBOUR_OFFSET = (1.5, 4.5)  # m, |lateral offset| between centrelines of adjacent lanes
NEIGHBOUR_MAX_DYAW = np.deg2rad(20.0)
NEIGHBOUR_MIN_OVERLAP = 0.5  # fraction of the shorter lane (or 10 m) lying beside the other
SUCC_CONTACT = 1.5  # m, end-to-start distance of geometric successors
LANE_SPACING = 2.0  # m, target spacing of short lanes (long lanes stretch to P points)
EGO_LANE_MAX_DYAW = np.deg2rad(60.0)
EGO_LANE_MARGIN = 1.5  # m beyond the half width at which the ego still counts as in a lane


def project(points: np.ndarray, line: np.ndarray):
    """Closest points of polyline `line` (m, 2) to `points` (n, 2): distance (n,), the
    point (n, 2), segment heading (n,), along-track fraction of the whole line (n,)."""
    a, b = line[:-1], line[1:]
    ab = b - a
    q = points[:, None] - a[None]
    f = np.clip(np.sum(q * ab, -1) / np.maximum(np.sum(ab * ab, -1), 1e-12), 0.0, 1.0)
    c = a[None] + f[..., None] * ab[None]
    d = np.hypot(*(points[:, None] - c).transpose(2, 0, 1))
    k = np.argmin(d, axis=1)
    n = np.arange(len(points))
    s = arc_lengths(line)
    seg = np.hypot(ab[:, 0], ab[:, 1])
    frac = (s[k] + f[n, k] * seg[k]) / max(s[-1], 1e-9)
    return d[n, k], c[n, k], np.arctan2(ab[k, 1], ab[k, 0]), frac


def _runs(inside: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index runs where inside is True."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], inside.astype(int), [0]])))
    return list(zip(edges[::2], edges[1::2]))


def candidate_lanes(mp: MapData, origin: np.ndarray, window: np.ndarray, ego_xy: np.ndarray) -> list[dict]:
    """Map lanes cropped to `window` [xmin, ymin, xmax, ymax] (local m), each the run of
    points inside nearest the ego path, sorted by that distance."""
    if not mp.lanes:
        return []
    box = mp.lane_bbox - np.concatenate([origin, origin])
    hit = (box[:, 0] <= window[2]) & (box[:, 2] >= window[0]) & (box[:, 1] <= window[3]) & (box[:, 3] >= window[1])
    out = []
    for i in np.flatnonzero(hit):
        lane = mp.lanes[i]
        xy = lane["pose"][:, :2] - origin
        inside = (xy[:, 0] >= window[0]) & (xy[:, 0] <= window[2]) & (xy[:, 1] >= window[1]) & (xy[:, 1] <= window[3])
        best = None
        for a, b in _runs(inside):
            if b - a < 2:
                continue
            run = xy[a:b]
            dist = np.min(np.hypot(*(run[:, None] - ego_xy[None]).transpose(2, 0, 1)))
            if best is None or dist < best[0]:
                best = (dist, run)
        if best is not None and arc_lengths(best[1])[-1] >= 1.0:
            out.append(
                dict(
                    lane,
                    xy=best[1],
                    dist=best[0],
                    start=xy[0],
                    end=xy[-1],
                    yaw0=lane["pose"][0, 2],
                    yaw1=lane["pose"][-1, 2],
                )
            )
    out.sort(key=lambda ln: ln["dist"])
    return out


def _neighbours(lines: list[np.ndarray]):
    n = len(lines)
    left, right = np.full(n, -1, np.int32), np.full(n, -1, np.int32)
    cands = []
    for i in range(n):
        pts = lines[i]
        d = np.diff(pts, axis=0)
        yaw = np.arctan2(d[:, 1], d[:, 0])
        yaw = np.append(yaw, yaw[-1])
        length_i = arc_lengths(pts)[-1]
        for j in range(n):
            if i == j:
                continue
            dist, c, yaw_j, frac = project(pts, lines[j])
            off = np.sum((c - pts) * left_normal(yaw), -1)
            dyaw = np.abs((yaw_j - yaw + np.pi) % (2 * np.pi) - np.pi)
            beside = (frac > 1e-6) & (frac < 1 - 1e-6) & (dyaw < NEIGHBOUR_MAX_DYAW)
            beside &= (np.abs(off) >= NEIGHBOUR_OFFSET[0]) & (np.abs(off) <= NEIGHBOUR_OFFSET[1])
            beside &= np.abs(np.abs(off) - dist) < 0.5  # the closest point is straight across
            for side in (1, -1):
                on = beside & (np.sign(off) == side)
                overlap = on.mean() * length_i
                need = min(10.0, NEIGHBOUR_MIN_OVERLAP * min(length_i, arc_lengths(lines[j])[-1]))
                if on.sum() >= 2 and overlap >= need:
                    cands.append((float(np.median(np.abs(off[on]))), i, j, side))
    for _, i, j, side in sorted(cands):
        a, b = (left, right) if side > 0 else (right, left)
        if a[i] < 0 and b[j] < 0:
            a[i], b[j] = j, i
    return left, right


def _successors(chosen: list[dict]) -> np.ndarray:
    index = {ln["token"]: k for k, ln in enumerate(chosen)}
    succ = np.full((len(chosen), MAX_SUCC), -1, np.int32)
    for k, ln in enumerate(chosen):
        if ln["has_connectivity"]:
            nxt = [index[t] for t in ln["outgoing"] if t in index and index[t] != k]
        else:  # geometric: my end touches its start, headings agree
            nxt = [
                m
                for m, o in enumerate(chosen)
                if m != k
                and np.hypot(*(o["start"] - ln["end"])) < SUCC_CONTACT
                and np.cos(o["yaw0"] - ln["yaw1"]) > np.cos(np.deg2rad(30.0))
            ]
        nxt = nxt[:MAX_SUCC]
        succ[k, : len(nxt)] = nxt
    return succ


def ego_lanes(ego: np.ndarray, lines: list[np.ndarray], widths: np.ndarray) -> np.ndarray:
    """(T,) nearest lane whose direction matches the ego's (within 60 deg) and that the
    ego is within half a width + 1.5 m of; -1 if none. ego (T, >=3) [x, y, yaw, ...]."""
    T = ego.shape[0]
    if not lines:
        return np.full(T, -1, np.int32)
    cost = np.full((len(lines), T), np.inf)
    for k, line in enumerate(lines):
        dist, _, yaw, _ = project(ego[:, :2], line)
        ok = np.abs((yaw - ego[:, 2] + np.pi) % (2 * np.pi) - np.pi) < EGO_LANE_MAX_DYAW
        ok &= dist <= 0.5 * widths[k] + EGO_LANE_MARGIN
        cost[k] = np.where(ok, dist, np.inf)
    best = np.argmin(cost, axis=0)
    return np.where(np.isfinite(cost.min(0)), best, -1).astype(np.int32)


def lane_arrays(mp: MapData, origin: np.ndarray, window: np.ndarray, ego: np.ndarray, L: int, P: int) -> dict:
    """Scenario lane fields (lane_points ... lane_succ, ego_lane) for one clip."""
    chosen = candidate_lanes(mp, origin, window, ego[:, :2])[:L]
    lines = []
    for ln in chosen:
        n = int(np.clip(np.ceil(arc_lengths(ln["xy"])[-1] / LANE_SPACING) + 1, 2, P))
        lines.append(resample(ln["xy"], n))
    points = np.zeros((L, P, 2))
    num = np.zeros(L, np.int32)
    width = np.zeros(L)
    for k, line in enumerate(lines):
        points[k, : len(line)] = line
        points[k, len(line) :] = line[-1]
        num[k] = len(line)
        width[k] = chosen[k]["width"]
    left, right = np.full(L, -1, np.int32), np.full(L, -1, np.int32)
    succ = np.full((L, MAX_SUCC), -1, np.int32)
    if lines:
        left[: len(lines)], right[: len(lines)] = _neighbours(lines)
        succ[: len(lines)] = _successors(chosen)
    return dict(
        lane_points=points,
        lane_num_points=num,
        lane_width=width,
        lane_left=left,
        lane_right=right,
        lane_succ=succ,
        ego_lane=ego_lanes(ego, lines, width[: len(lines)]),
    )
