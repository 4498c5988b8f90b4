"""Batched log-replay traffic: IDM car following and gap-checked lane changes on routes.

Every car (the ego's plan included, slot 0) moves along its route parameter u with
the Intelligent Driver Model. Its leader is the nearest car ahead that occupies a lane
it watches (the lanes of its route, plus the target lane while changing lanes),
positions compared in its own route frame through `route_c`. Red lights are standing
obstacles at the stop line. A planned lane change starts once neither the changer nor
its new follower would brake hard (MOBIL's safety test) and moves the car sideways by
a quintic profile over `lc_dur` seconds of travel; meanwhile it blocks both lanes.
Ramp cars also slot in behind cars on the lane beside them (`route_watch2`), braking
at most MERGE_DECEL for it. Vectorised over (N scenarios, M cars); the pairwise leader
search is (N, M, M) per step, in float32.
"""

from __future__ import annotations

import numpy as np

from jaxsim.procedural.curves import smoothstep5
from jaxsim.procedural.placement import MODE_ROUTE
from jaxsim.procedural.roadmap import ROUTE_DU

MAX_DECEL = 7.0  # m/s^2, IDM braking limit (the vehicle limit is 8)
LC_WINDOW = 3.0  # s after lc_t during which a blocked lane change is retried
LC_SAFE = 1.0  # max IDM interaction term (s*/s)^2 accepted in a new lane (~ -a m/s^2)
MERGE_DECEL = 2.5  # m/s^2, most a merging car brakes to slot in behind a car beside it


def _bits(lane: np.ndarray, on: np.ndarray) -> np.ndarray:
    """uint32 bit masks of lane ids (< 32), 0 where `on` is False or lane < 0."""
    return np.where(on & (lane >= 0), np.left_shift(np.uint32(1), np.maximum(lane, 0).astype(np.uint32)), np.uint32(0))


def _nearest_index(gaps: np.ndarray, hit: np.ndarray):
    """Smallest gap (N, M) over hit pairs of gaps (N, M, M) (inf if none) and the index of that car."""
    gaps = np.where(hit, gaps, np.float32(np.inf))
    j = np.argmin(gaps, axis=2)
    return np.take_along_axis(gaps, j[..., None], axis=2)[..., 0].astype(np.float64), j


def _nearest(gaps: np.ndarray, hit: np.ndarray, v: np.ndarray, n_ix: np.ndarray):
    """Like _nearest_index, with the speed (N, M) of that car instead of its index."""
    gap, j = _nearest_index(gaps, hit)
    return gap, v[n_ix, j]


def _interaction(v, vlead, gap, s0, th, sqrt_ab):
    """IDM interaction term (s* / s)^2, 0 without a leader."""
    s_star = s0 + np.maximum(0.0, v * th + v * (v - vlead) / sqrt_ab)
    return np.where(np.isfinite(gap), (s_star / np.maximum(gap, 0.1)) ** 2, 0.0)


def simulate(tab: dict, spec: dict, num_steps: int, dt: float) -> dict:
    """Run the traffic model. tab: stacked route tables (N, R, ...); spec: AgentSpec (N, M).

    Returns u, v, d (lateral offset m), lane, alive: (T, N, M); lc_u0, lc_len: (N, M).
    """
    N, M = spec["route"].shape
    R, K = tab["route_lane"].shape[1:]
    n_ix = np.arange(N)[:, None]
    route = spec["route"]
    has_lc = spec["lc_route"] >= 0
    lc_route = np.maximum(spec["lc_route"], 0)
    flat_src = (n_ix * R + route) * K
    flat_tgt = (n_ix * R + lc_route) * K
    lane_tab, lane2_tab = tab["route_lane"].ravel(), tab["route_lane2"].ravel()
    watch2_tab, vlim_tab = tab["route_watch2"].ravel(), tab["route_vlim"].ravel()
    u0r = tab["route_u0"][n_ix, route]
    mask_src = tab["route_mask"][n_ix, route].astype(np.uint32)
    mask_tgt = np.where(has_lc, tab["route_mask"][n_ix, lc_route], 0).astype(np.uint32)
    stop_u, red_until = tab["route_stop"][n_ix, route], tab["route_red"][n_ix, route]
    use_c = bool(np.any(tab["route_c"] != 0))  # highways share one station frame
    c_own = tab["route_c"][n_ix, route].astype(np.float32) if use_c else None
    half = 0.5 * spec["length"]
    half_sum = (half[:, :, None] + half[:, None, :]).astype(np.float32)  # pair arrays in float32: cache
    a, th, s0 = spec["idm_a"], spec["idm_t"], spec["idm_s0"]
    sqrt_ab = 2.0 * np.sqrt(np.maximum(spec["idm_a"], 0.1) * np.maximum(spec["idm_b"], 0.1))  # pads have zeros
    end_u = u0r + (K - 1) * ROUTE_DU - 10.0
    u, v = spec["u0"].copy(), spec["v0"].copy()
    alive = spec["mode"] == MODE_ROUTE
    lc_u0, lc_len = np.full((N, M), np.inf), np.full((N, M), 20.0)
    started = np.zeros((N, M), bool)
    out = {k: np.zeros((num_steps, N, M)) for k in ("u", "v", "d")}
    out["lane"] = np.zeros((num_steps, N, M), np.int32)
    out["alive"] = np.zeros((num_steps, N, M), bool)

    for t in range(num_steps):
        time = t * dt
        alive &= u < end_u
        k = np.clip(((u - u0r) / ROUTE_DU).astype(np.int64), 0, K - 1)
        lane_src = lane_tab[flat_src + k]
        lane_tgt = np.where(has_lc, lane_tab[flat_tgt + k], -1)
        frac = np.where(started, smoothstep5((u - np.where(started, lc_u0, 0.0)) / lc_len), 0.0)
        in_tgt = frac >= 0.5
        occ1 = np.where(in_tgt, lane_tgt, lane_src)
        changing = (frac > 0.0) & (frac < 1.0)
        occ2 = np.where(changing, np.where(in_tgt, lane_src, lane_tgt), lane2_tab[flat_src + k])
        watch = np.where(frac >= 1.0, mask_tgt, np.where(started, mask_src | mask_tgt, mask_src))
        watch2 = _bits(watch2_tab[flat_src + k], alive)
        out["u"][t], out["v"][t], out["d"][t] = u, v, spec["lc_dd"] * frac
        out["lane"][t], out["alive"][t] = occ1, alive

        # leader: nearest car ahead occupying a watched lane (either of its two lanes); a
        # car never leads itself because it is not ahead of itself
        occ_bits = _bits(occ1, alive) | _bits(occ2, alive)
        hit = (watch[:, :, None] & occ_bits[:, None, :]) != 0
        u32 = u.astype(np.float32)
        if use_c:  # per-route frames (intersections: no lane changes, occ2 unused)
            oc = np.maximum(occ1, 0)
            c_i = np.take_along_axis(c_own, np.broadcast_to(oc[:, None, :], (N, M, M)), axis=2)
            c_j = np.take_along_axis(c_own, oc[:, :, None], axis=2)[..., 0]
            rel = c_i + (u32 - c_j)[:, None, :] - u32[:, :, None]
        else:  # highways: every lane is parameterised by the shared station
            rel = u32[:, None, :] - u32[:, :, None]
        ahead = rel > 0
        rel -= half_sum
        gap, vlead = _nearest(rel, hit & ahead, v, n_ix)
        g_stop = stop_u - u - half
        red = (time < red_until) & (g_stop > -1.0) & (g_stop < gap)
        gap, vlead = np.where(red, np.maximum(g_stop, 0.1), gap), np.where(red, 0.0, vlead)

        # IDM with a scripted braking profile and the route's curve speed limit
        since = np.maximum(time - spec["brake_t"], 0.0)  # 0 before braking (and when brake_t is inf)
        braked = np.maximum(spec["brake_v"], spec["v_des"] - spec["brake_rate"] * since)
        v_des = np.where(since > 0, braked, spec["v_des"])
        v0 = np.maximum(np.minimum(v_des, vlim_tab[flat_src + k]), 0.1)
        acc = np.clip(a * (1.0 - (v / v0) ** 4 - _interaction(v, vlead, gap, s0, th, sqrt_ab)), -MAX_DECEL, a)
        if watch2.any():
            # merging cars slot in behind cars beside them, but only by braking gently;
            # if that is not enough they merge anyway and the car behind yields
            g2, vl2 = _nearest(rel, ahead & ((watch2[:, :, None] & occ_bits[:, None, :]) != 0), v, n_ix)
            soft = np.maximum(-a * _interaction(v, vl2, g2, s0, th, sqrt_ab), -MERGE_DECEL)
            acc = np.minimum(acc, np.where(np.isfinite(g2), soft + a * (1.0 - (v / v0) ** 4), acc))

        # start planned lane changes whose target-lane gaps are safe
        ready = has_lc & ~started & alive & (time >= spec["lc_t"]) & (time <= spec["lc_t"] + LC_WINDOW) & (v > 2.0)
        if ready.any():
            # MOBIL-style safety: neither the changer nor its new follower would brake hard
            in_tgt_lane = (_bits(lane_tgt, ready)[:, :, None] & occ_bits[:, None, :]) != 0
            rel = (u[:, None, :] - u[:, :, None]).astype(np.float32)
            g_f, v_f = _nearest(rel - half_sum, in_tgt_lane & (rel > 0), v, n_ix)
            g_b, j_b = _nearest_index(-rel - half_sum, in_tgt_lane & (rel <= 0))
            v_b = v[n_ix, j_b]
            self_ok = _interaction(v, v_f, g_f, s0, th, sqrt_ab) < LC_SAFE
            back_ok = _interaction(v_b, v, g_b, s0[n_ix, j_b], th[n_ix, j_b], sqrt_ab[n_ix, j_b]) < LC_SAFE
            go = ready & self_ok & back_ok & (g_f > 0) & (g_b > 0)
            lc_u0 = np.where(go, u, lc_u0)
            lc_len = np.where(go, np.maximum(v * spec["lc_dur"], 20.0), lc_len)
            started |= go

        v_new = np.clip(v + acc * dt, 0.0, 40.0)
        u = np.where(alive, u + 0.5 * (v + v_new) * dt, u)
        v = np.where(alive, v_new, v)
    out["lc_u0"], out["lc_len"] = lc_u0, lc_len
    return out
