"""From simulated traffic to Scenario arrays: agent poses, observation windows, safety
filters, static boxes, and compact agent slots (numpy, batched over N scenarios).

Safety filters make the guarantees the expert log promises: an agent whose box ever
touches the ego's (inflated by EGO_MARGIN) while observed is removed from the log, as
is the later of two agents that overlap, and static boxes that touch the ego's path or
an observed agent are dropped.
"""

from __future__ import annotations

import numpy as np

from jaxsim.procedural.placement import MODE_FREE, MODE_ROUTE
from jaxsim.procedural.roadmap import ROUTE_DU
from jaxsim.scenario import AgentType

EGO_MARGIN = 0.3  # m added to each side of the ego box in the agent filter
STATIC_MARGIN = 0.5  # m added to each side of the ego box in the static-box filter
AGENT_SHRINK = 0.15  # m removed from each side of agent boxes: only gross overlaps count


def boxes_overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Separating-axis test of boxes [x, y, yaw, length, width] (..., 5), broadcasting
    (numpy twin of jaxsim.geometry.box_overlap); touching counts as overlap."""
    d0, d1 = b[..., 0] - a[..., 0], b[..., 1] - a[..., 1]
    ca, sa, cb, sb = np.cos(a[..., 2]), np.sin(a[..., 2]), np.cos(b[..., 2]), np.sin(b[..., 2])
    hal, haw, hbl, hbw = 0.5 * a[..., 3], 0.5 * a[..., 4], 0.5 * b[..., 3], 0.5 * b[..., 4]
    c_ll, c_lw = np.abs(ca * cb + sa * sb), np.abs(-ca * sb + sa * cb)
    sep = np.abs(d0 * ca + d1 * sa) > hal + hbl * c_ll + hbw * c_lw
    sep |= np.abs(-d0 * sa + d1 * ca) > haw + hbl * c_lw + hbw * c_ll
    sep |= np.abs(d0 * cb + d1 * sb) > hbl + hal * c_ll + haw * c_lw
    sep |= np.abs(-d0 * sb + d1 * cb) > hbw + hal * c_lw + haw * c_ll
    return ~sep


def agent_poses(tab: dict, spec: dict, sim: dict, dt: float) -> np.ndarray:
    """World states (T, N, M, 4) [x, y, yaw, speed] of every slot (ego plan included)."""
    T, N, M = sim["u"].shape
    R, K = tab["route_yaw"].shape[1:]
    n_ix = np.arange(N)[None, :, None]
    route = spec["route"][None]
    k = (sim["u"] - tab["route_u0"][n_ix, route]) / ROUTE_DU
    i = np.clip(np.floor(k).astype(np.int64), 0, K - 2)
    f = np.clip(k - i, 0.0, 1.0)
    flat = (n_ix * R + route) * K + i
    xy_tab, yaw_tab = tab["route_xy"].reshape(-1, 2), tab["route_yaw"].ravel()
    xy = xy_tab[flat] * (1 - f[..., None]) + xy_tab[flat + 1] * f[..., None]
    yaw = yaw_tab[flat] * (1 - f) + yaw_tab[flat + 1] * f
    # lateral offset of lane changes, and the heading change it implies
    xy = xy + sim["d"][..., None] * np.stack([-np.sin(yaw), np.cos(yaw)], -1)
    x = (sim["u"] - np.where(np.isfinite(sim["lc_u0"]), sim["lc_u0"], 0.0)[None]) / sim["lc_len"][None]
    inside = np.isfinite(sim["lc_u0"])[None] & (x > 0) & (x < 1)
    slope = np.where(inside, spec["lc_dd"][None] * 30.0 * x * x * (1 - x) ** 2 / sim["lc_len"][None], 0.0)
    yaw = yaw + np.arctan(slope)
    out = np.concatenate([xy, yaw[..., None], sim["v"][..., None]], -1)
    # free agents (pedestrians) walk at constant velocity
    free = spec["mode"] == MODE_FREE
    if free.any():
        t = (np.arange(T) * dt)[:, None, None]
        fx, fy, fyaw, fv = (spec["free"][..., j][None] for j in range(4))
        walk = np.stack(
            [
                fx + fv * np.cos(fyaw) * t,
                fy + fv * np.sin(fyaw) * t,
                np.broadcast_to(fyaw, (T, N, M)),
                np.broadcast_to(fv, (T, N, M)),
            ],
            -1,
        )
        out = np.where(free[None, :, :, None], walk, out)
    return out


def observed(states: np.ndarray, ego: np.ndarray, alive: np.ndarray, mode: np.ndarray, sensor_range: float):
    """(T, N, A) agents within sensor range, filled between first and last sighting."""
    near = np.hypot(states[..., 0] - ego[..., None, 0], states[..., 1] - ego[..., None, 1]) < sensor_range
    seen = near & ((alive & (mode == MODE_ROUTE)[None]) | (mode == MODE_FREE)[None])
    return np.maximum.accumulate(seen, axis=0) & np.maximum.accumulate(seen[::-1], axis=0)[::-1]


def _bbox(xy: np.ndarray, valid: np.ndarray, pad) -> np.ndarray:
    """Axis-aligned bounds (..., 4) [xmin, ymin, xmax, ymax] of valid points xy (T, ..., 2), padded."""
    lo = np.where(valid[..., None], xy, np.inf).min(0) - np.asarray(pad)[..., None]
    hi = np.where(valid[..., None], xy, -np.inf).max(0) + np.asarray(pad)[..., None]
    return np.concatenate([lo, hi], -1)


def _bbox_meet(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a[..., 0] <= b[..., 2]) & (b[..., 0] <= a[..., 2]) & (a[..., 1] <= b[..., 3]) & (b[..., 1] <= a[..., 3])


def safety_filter(states, valid, size, ego, ego_size) -> np.ndarray:
    """Keep-mask (N, A): drop agents touching the (inflated) ego, then the later of
    grossly overlapping agent pairs. states (T, N, A, 4), valid (T, N, A), size (N, A, 2)."""
    T, N, A = valid.shape
    ego_size = np.asarray(ego_size, float)
    ego_box = np.concatenate([ego[..., :3], np.broadcast_to(ego_size + 2 * EGO_MARGIN, (T, N, 2))], -1)
    reach = 0.5 * np.hypot(*(ego_size + 2 * EGO_MARGIN)) + 0.5 * np.hypot(size[..., 0], size[..., 1])[None]
    dx, dy = states[..., 0] - ego[:, :, None, 0], states[..., 1] - ego[:, :, None, 1]
    t, n, a = np.nonzero(valid & (dx * dx + dy * dy < reach * reach))
    keep = np.ones((N, A), bool)
    bad = boxes_overlap(ego_box[t, n], np.concatenate([states[t, n, a, :3], size[n, a]], -1))
    keep[n[bad], a[bad]] = False
    # agent pairs: only those whose padded trajectory bounds meet are checked step by step
    shrunk = np.maximum(size - 2 * AGENT_SHRINK, 0.1)
    radius = 0.5 * np.hypot(shrunk[..., 0], shrunk[..., 1])
    live = valid & keep[None]
    bounds = _bbox(states[..., :2], live, radius)
    n, i, j = np.nonzero(_bbox_meet(bounds[:, :, None], bounds[:, None, :]) & np.triu(np.ones((A, A), bool), 1)[None])
    if len(n):
        both = live[:, n, i] & live[:, n, j]  # (T, C)
        close = both & (
            np.hypot(states[:, n, i, 0] - states[:, n, j, 0], states[:, n, i, 1] - states[:, n, j, 1])
            < radius[n, i] + radius[n, j]
        )
        t, c = np.nonzero(close)
        hit = boxes_overlap(
            np.concatenate([states[t, n[c], i[c], :3], shrunk[n[c], i[c]]], -1),
            np.concatenate([states[t, n[c], j[c], :3], shrunk[n[c], j[c]]], -1),
        )
        keep[n[c[hit]], j[c[hit]]] = False
    return keep


def static_filter(boxes: np.ndarray, svalid: np.ndarray, ego: np.ndarray, ego_size, states, valid, size) -> np.ndarray:
    """Keep-mask (N, S) of static boxes clear of the ego at every step and of observed agents.

    boxes (N, S, 5); ego (T, N, 4); states (T, N, A, 4), valid (T, N, A), size (N, A, 2).
    """
    T, N = ego.shape[:2]
    keep = svalid.copy()
    ego_size = np.asarray(ego_size, float)
    r_box = 0.5 * np.hypot(boxes[..., 3], boxes[..., 4])  # (N, S)
    box_bounds = np.concatenate([boxes[..., :2] - r_box[..., None], boxes[..., :2] + r_box[..., None]], -1)
    # the ego, at every step
    ego_box = np.concatenate([ego[..., :3], np.broadcast_to(ego_size + 2 * STATIC_MARGIN, (T, N, 2))], -1)
    ego_bounds = _bbox(ego[..., :2], np.ones((T, N), bool), 0.5 * np.hypot(*(ego_size + 2 * STATIC_MARGIN)))
    n, k = np.nonzero(_bbox_meet(ego_bounds[:, None], box_bounds) & svalid)
    if len(n):
        hit = boxes_overlap(ego_box[:, n], boxes[n, k][None]).any(0)
        keep[n[hit], k[hit]] = False
    # observed agents
    agent_bounds = _bbox(states[..., :2], valid, 0.5 * np.hypot(size[..., 0], size[..., 1]))
    n, a, k = np.nonzero(_bbox_meet(agent_bounds[:, :, None], box_bounds[:, None]) & svalid[:, None])
    if len(n):
        agent_box = np.concatenate([states[:, n, a, :3], np.broadcast_to(size[n, a], (T, len(n), 2))], -1)
        hit = (boxes_overlap(agent_box, boxes[n, k][None]) & valid[:, n, a]).any(0)
        keep[n[hit], k[hit]] = False
    return keep


def compact(states, valid, size, types, ego):
    """Move kept agents first, ordered by their closest observed approach to the ego;
    empty slots become PAD (type 0, never valid, zero states)."""
    dist = np.hypot(states[..., 0] - ego[..., None, 0], states[..., 1] - ego[..., None, 1])
    key = np.where(valid, dist, np.inf).min(0)  # (N, A)
    key = np.where(valid.any(0), key, np.inf)
    order = np.argsort(key, axis=1, kind="stable")
    n_ix = np.arange(states.shape[1])[:, None]
    states, valid = states[:, n_ix, order], valid[:, n_ix, order]
    size, types = size[n_ix, order], types[n_ix, order]
    used = valid.any(0)
    types = np.where(used, types, int(AgentType.PAD))
    states = np.where(valid[..., None], states, 0.0)
    size = np.where(used[..., None], size, 0.0)
    return states, valid, size, types
