"""Base paths for cousins: the expert log extended along the lane graph, and the
alternative turns at the first junction, as smooth, uniformly resampled polylines.

All functions are written for one env and read the shared bank by scenario index `i`,
gathering only the lanes they need (65k envs must not copy whole scenarios).
A polyline here is a fixed-shape (M, 2) array in which padding repeats a point
(zero-length segments), so concatenations stay static-shaped.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsim.geometry import closest_on_polyline
from jaxsim.scenario import Scenario

NUM_BASES = 3  # base 0: the expert's route; bases 1, 2: alternative successors


def cumulative_arc(points: jnp.ndarray) -> jnp.ndarray:
    """(M, 2) polyline -> (M,) arc length at each vertex (m), starting at 0."""
    seg = jnp.sqrt(jnp.sum(jnp.diff(points, axis=0) ** 2, axis=-1) + 1e-12) - 1e-6
    return jnp.concatenate([jnp.zeros((1,)), jnp.cumsum(jnp.maximum(seg, 0.0))])


def resample(points: jnp.ndarray, spacing: float, num: int) -> jnp.ndarray:
    """Points every `spacing` m along a polyline (M, 2) -> (num, 2).

    Past the end the path continues straight along the last non-degenerate segment.
    """
    cum = cumulative_arc(points)
    s = spacing * jnp.arange(num, dtype=jnp.float32)
    xy = jnp.stack([jnp.interp(s, cum, points[:, 0]), jnp.interp(s, cum, points[:, 1])], axis=-1)
    seg = jnp.diff(points, axis=0)
    seg_len = jnp.sqrt(jnp.sum(seg * seg, axis=-1) + 1e-12)
    last = jnp.max(jnp.where(seg_len > 1e-3, jnp.arange(seg.shape[0]), 0))
    direction = seg[last] / seg_len[last]
    return xy + jnp.maximum(s - cum[-1], 0.0)[:, None] * direction


def smooth(points: jnp.ndarray, window: int) -> jnp.ndarray:
    """Two passes of a centred moving average along axis 0 of (Q, D) -> (Q, D).

    Odd reflection at both ends keeps the first and last point and straight lines
    exactly; polyline corners become curvature ramps a few metres long.
    """
    if window <= 1:
        return points
    h = window // 2
    kernel = jnp.ones((window,), points.dtype) / window
    for _ in range(2):
        head = 2.0 * points[:1] - points[1 : h + 1][::-1]
        tail = 2.0 * points[-1:] - points[-h - 1 : -1][::-1]
        padded = jnp.concatenate([head, points, tail], axis=0)
        points = jnp.stack([jnp.convolve(padded[:, d], kernel, mode="valid") for d in range(points.shape[-1])], axis=-1)
    return points


def vertex_headings(points: jnp.ndarray) -> jnp.ndarray:
    """Heading (Q,) at each vertex from central differences (one-sided at the ends)."""
    d = jnp.concatenate([points[1:2] - points[:1], points[2:] - points[:-2], points[-1:] - points[-2:-1]], axis=0)
    return jnp.arctan2(d[:, 1], d[:, 0])


def lane_chain(lane_succ: jnp.ndarray, first, second, length: int) -> jnp.ndarray:
    """Lanes (length,) int32 followed from `first`: then `second` if >= 0, else each
    lane's first successor. -1 once the graph ends."""

    def nxt(lane):
        return jnp.where(lane >= 0, lane_succ[jnp.maximum(lane, 0), 0], -1)

    chain = [jnp.asarray(first, jnp.int32)]
    for k in range(1, length):
        c = nxt(chain[-1])
        if k == 1:
            c = jnp.where(second >= 0, second, c)
        chain.append(jnp.where(chain[-1] >= 0, c, -1).astype(jnp.int32))
    return jnp.stack(chain)


def chain_polyline(bank: Scenario, i, chain: jnp.ndarray, anchor: jnp.ndarray) -> jnp.ndarray:
    """Centerlines of `chain` (C,) concatenated -> (C * P, 2).

    Unused lanes and padding points repeat the previous valid point (`anchor` (2,) if
    there is none yet), so a chain that ends early just stops and an empty chain is
    the anchor repeated; `resample` then continues straight.
    """
    pts = bank.lane_points[i, jnp.maximum(chain, 0)]  # (C, P, 2)
    num = bank.lane_num_points[i, jnp.maximum(chain, 0)]
    ok = (chain >= 0)[:, None] & (jnp.arange(pts.shape[1])[None, :] < num[:, None])
    flat = jnp.concatenate([anchor[None], pts.reshape(-1, 2)], axis=0)
    ok = jnp.concatenate([jnp.ones((1,), bool), ok.reshape(-1)])
    fill = jax.lax.cummax(jnp.where(ok, jnp.arange(flat.shape[0]), 0), axis=0)
    return flat[fill][1:]


def extend_log(log_xy: jnp.ndarray, n_log, chain_xy: jnp.ndarray) -> jnp.ndarray:
    """Logged points up to `n_log`, then the chain beyond the projection of the last
    logged point, translated so the two join without a step. -> (T + M, 2)."""
    t = jnp.arange(log_xy.shape[0])
    end = log_xy[jnp.maximum(n_log - 1, 0)]
    log_part = jnp.where((t < n_log)[:, None], log_xy, end)
    _, seg, frac = closest_on_polyline(chain_xy, end)
    cum = cumulative_arc(chain_xy)
    s_proj = cum[seg] + frac * (cum[seg + 1] - cum[seg])
    proj = chain_xy[seg] + frac * (chain_xy[seg + 1] - chain_xy[seg])
    ahead = (cum > s_proj + 1e-3)[:, None]
    cont = jnp.where(ahead, chain_xy + (end - proj), end)
    return jnp.concatenate([log_part, cont], axis=0)


def junction(bank: Scenario, i, n_valid):
    """The expert's first lane with several successors, and its other successors.

    Returns (t_exit () int32: first logged step after leaving that lane,
    lane () int32, alternatives (2,) int32 lanes, alt_ok (2,) bool).
    """
    lanes = bank.ego_lane[i]
    steps = jnp.arange(lanes.shape[0])
    valid = (steps < n_valid) & (lanes >= 0)
    succ = bank.lane_succ[i]  # (L, 3)
    nsucc = jnp.sum(succ >= 0, axis=-1)
    cand = valid & (nsucc[jnp.maximum(lanes, 0)] >= 2)
    has = jnp.any(cand)
    t_b = jnp.argmax(cand)
    lane = jnp.where(has, lanes[t_b], -1)
    left = valid & (steps > t_b) & (lanes != lane)
    t_exit = jnp.where(jnp.any(left), jnp.argmax(left), n_valid).astype(jnp.int32)
    options = succ[jnp.maximum(lane, 0)]
    nxt = lanes[jnp.minimum(t_exit, lanes.shape[0] - 1)]
    chosen = jnp.where((t_exit < n_valid) & jnp.any(options == nxt), nxt, options[0])
    alt = has & (options >= 0) & (options != chosen)
    order = jnp.argsort(jnp.where(alt, jnp.arange(3), 3))[:2]
    return t_exit, lane, options[order], alt[order]


def base_paths(bank: Scenario, i, n_valid, spacing: float, num: int, chain_lanes: int, window: int):
    """Smooth base paths (NUM_BASES, num, 2) and availability (NUM_BASES,) bool.

    Base 0 follows the log and continues along its last lane's successors; bases 1 and
    2 follow the log to the junction and then take an alternative successor.
    """
    log_xy = bank.ego_traj[i, :, :2]
    lanes = bank.ego_lane[i]
    last_lane = lanes[jnp.maximum(n_valid - 1, 0)]
    t_exit, j_lane, alts, alt_ok = junction(bank, i, n_valid)
    n_logs = jnp.stack([n_valid, t_exit, t_exit])
    firsts = jnp.stack([last_lane, j_lane, j_lane])
    seconds = jnp.concatenate([jnp.full((1,), -1, jnp.int32), alts])

    def one(n_log, first, second):
        end = log_xy[jnp.maximum(n_log - 1, 0)]
        chain = lane_chain(bank.lane_succ[i], first, second, chain_lanes)
        poly = extend_log(log_xy, n_log, chain_polyline(bank, i, chain, end))
        return smooth(resample(poly, spacing, num), window)

    paths = jax.vmap(one)(n_logs, firsts, seconds)
    ok = jnp.concatenate([jnp.ones((1,), bool), alt_ok])
    return paths, ok
