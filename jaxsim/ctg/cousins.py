"""Cousin sampling: K cousins of each expert ego trajectory, checked, in one jitted call.

    cousins = jax.jit(sample_cousins, static_argnames=("cfg", "chunk"))(key, params, idx, cfg)

A cousin combines three independent choices (so combinations come for free):
  base path  the expert's route (log, then its lane's successors beyond the end of the
             log) or an alternative successor at the first junction (`Cousins.branch`);
  lateral    none, a quintic offset inside the lane, or a quintic lane change onto the
             left / right neighbour's centerline (`Lateral`);
  speed      logged, slower, faster or stop-and-go (`Speed`), smooth quintic ramps.
Families a scene does not offer (no neighbour, no junction) are never sampled. Each
cousin is time-parameterised at the scenario's dt and replayed through the bicycle
model (`profiles.replay`), then checked (`check.check`); `reasons == 0` marks accepted
cousins. Deterministic for a given key: env n uses `jax.random.split(key, N)[n]`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
from flax import struct

from jaxsim import kinematics as kin
from jaxsim.ctg import paths, profiles
from jaxsim.ctg.check import check
from jaxsim.ctg.config import CTGConfig, Lateral, RejectReason, Speed
from jaxsim.geometry import closest_on_polyline
from jaxsim.scenario import Scenario

if TYPE_CHECKING:
    from jaxsim.env import EnvParams


@struct.dataclass
class Cousins:
    """K cousins of one env (a batch adds leading dims). T = bank steps, E = extra steps.

    states:    (K, T + E, 4) [x, y, yaw, speed]; the first T rows are the route, the
               rest look ahead for action labels. A bicycle rollout of `controls`.
    controls:  (K, T + E - 1, 2) [accel m/s^2, steer rad] within the limits.
    route_len: (K,) int32 valid route rows (the expert log's length).
    reasons:   (K,) int32 `RejectReason` bits, 0 = accepted.
    lateral, speed: (K,) int32 `Lateral` / `Speed` family codes.
    branch:    (K,) int32 base path: 0 the expert's route, 1-2 alternative successors.
    """

    states: jnp.ndarray
    controls: jnp.ndarray
    route_len: jnp.ndarray
    reasons: jnp.ndarray
    lateral: jnp.ndarray
    speed: jnp.ndarray
    branch: jnp.ndarray
    num_steps: int = struct.field(pytree_node=False, default=0)

    @property
    def accepted(self) -> jnp.ndarray:
        return self.reasons == 0

    @property
    def route(self) -> jnp.ndarray:
        """(..., K, T, 4) reference paths for `DrivingEnv.reset_on_route`."""
        return self.states[..., : self.num_steps, :]


def _lerp(u, interval):
    return interval[0] + u * (interval[1] - interval[0])


def _categorical(u, weights):
    """Inverse-CDF draw from non-negative `weights` (n,) with a uniform `u` (zero-weight
    entries are never drawn). One threefry call per cousin keeps the program small."""
    cum = jnp.cumsum(weights)
    return jnp.argmax(cum > u * cum[-1]).astype(jnp.int32)


def _neighbour_offset(bank: Scenario, i, lane, neighbour, point, heading):
    """Signed lateral offset (m, + left) from `point` to the neighbour's centerline, and
    whether it looks like an adjacent lane (between 0.5 and 2 lane widths away)."""
    nb = jnp.maximum(neighbour, 0)
    pts = bank.lane_points[i, nb]
    _, seg, frac = closest_on_polyline(pts, point, jnp.maximum(bank.lane_num_points[i, nb], 2))
    q = pts[seg] + frac * (pts[seg + 1] - pts[seg])
    d = jnp.dot(q - point, jnp.stack([-jnp.sin(heading), jnp.cos(heading)]))
    w = bank.lane_width[i, jnp.maximum(lane, 0)]
    ok = (lane >= 0) & (neighbour >= 0) & (jnp.abs(d) >= 0.5 * w) & (jnp.abs(d) <= 2.0 * w)
    return d, ok


def _one_cousin(key, k, ctx: dict, bank: Scenario, i, cfg: CTGConfig, dyn):
    """Sample, time-parameterise, replay and check cousin `k` of env `i`."""
    u = jax.random.uniform(key, (16,))
    dt, v_log, v_ref, n_valid = ctx["dt"], ctx["v_log"], ctx["v_ref"], ctx["n_valid"]
    expert = cfg.include_expert & (k == 0)

    # base path: the expert's route or an alternative turn
    alt_ok = ctx["base_ok"][1:]
    take_turn = jnp.any(alt_ok) & (u[0] < cfg.turn_prob) & ~expert
    alt = _categorical(u[1], alt_ok.astype(jnp.float32))
    branch = jnp.where(take_turn, 1 + alt, 0).astype(jnp.int32)
    base = ctx["bases"][branch]

    # lateral family, judged at the manoeuvre start
    t_a = _lerp(u[2], cfg.maneuver_start)
    step_a = jnp.clip(jnp.round(t_a / dt).astype(jnp.int32), 0, n_valid - 1)
    s_a = jnp.maximum(ctx["s_log"][step_a], 0.5)
    lane_a = bank.ego_lane[i, step_a]
    lane_a = jnp.where((branch > 0) & (step_a >= ctx["t_exit"]), ctx["alts"][jnp.maximum(branch - 1, 0)], lane_a)
    q_a = jnp.clip(jnp.round(s_a / cfg.path_spacing).astype(jnp.int32), 0, cfg.path_points - 1)
    p_a, h_a = base[q_a], paths.vertex_headings(base)[q_a]
    d_left, ok_left = _neighbour_offset(bank, i, lane_a, bank.lane_left[i, jnp.maximum(lane_a, 0)], p_a, h_a)
    d_right, ok_right = _neighbour_offset(bank, i, lane_a, bank.lane_right[i, jnp.maximum(lane_a, 0)], p_a, h_a)
    lat_ok = jnp.stack([True, lane_a >= 0, ok_left & (d_left > 0), ok_right & (d_right < 0)])
    lat_w = jnp.asarray(cfg.lateral_weights, jnp.float32) * lat_ok
    lateral = jnp.where(expert, Lateral.NONE, _categorical(u[3], lat_w)).astype(jnp.int32)

    # speed family; a cousin identical to the expert gets a non-logged speed instead
    spd_w = jnp.asarray(cfg.speed_weights, jnp.float32)
    trivial = (lateral == Lateral.NONE) & (branch == 0)
    spd_w = jnp.where(trivial & (jnp.sum(spd_w[1:]) > 0), spd_w.at[0].set(0.0), spd_w)
    speed = jnp.where(expert, Speed.LOG, _categorical(u[4], spd_w)).astype(jnp.int32)

    # lateral profile (in base arc length)
    width = bank.lane_width[i, jnp.maximum(lane_a, 0)]
    max_off = jnp.maximum(0.5 * (width - bank.ego_size[i, 1]) - cfg.offset_margin, 0.0)
    mag = _lerp(u[5], (jnp.minimum(cfg.offset_min, max_off), max_off))
    sign = jnp.where(u[6] < 0.5, 1.0, -1.0)
    target = jnp.select(
        [lateral == Lateral.OFFSET, lateral == Lateral.LANE_LEFT, lateral == Lateral.LANE_RIGHT],
        [sign * mag, d_left, d_right], 0.0,
    )  # fmt: skip
    is_lc = lateral >= Lateral.LANE_LEFT
    sampled = jnp.where(is_lc, _lerp(u[7], cfg.lane_change_time), _lerp(u[7], cfg.offset_time))
    duration = profiles.shift_duration(target, sampled, cfg.comfort_accel, cfg.comfort_jerk)
    s_grid = cfg.path_spacing * jnp.arange(cfg.path_points, dtype=jnp.float32)
    lateral_m = profiles.lateral_offset(s_grid, s_a, v_ref * duration, target)
    path = profiles.offset_path(base, lateral_m)

    # speed profile
    factor = jnp.where(speed == Speed.SLOWER, _lerp(u[8], cfg.slower_factor), _lerp(u[8], cfg.faster_factor))
    v_top = jnp.max(v_log)
    t0 = _lerp(u[9], cfg.maneuver_start)
    ramp = profiles.ramp_duration(
        (factor - 1.0) * v_top, _lerp(u[10], cfg.speed_ramp_time), cfg.comfort_accel, cfg.comfort_jerk
    )
    t_stop = profiles.ramp_duration(v_top, 0.0, _lerp(u[11], cfg.stop_decel), cfg.comfort_jerk)
    t_go = profiles.ramp_duration(v_top, 0.0, _lerp(u[12], cfg.go_accel), cfg.comfort_jerk)
    dwell = _lerp(u[13], cfg.stop_dwell)
    p = jnp.where(
        speed == Speed.STOP_GO, jnp.stack([t0, t_stop, dwell, t_go, 0.0]), jnp.stack([factor, t0, ramp, 0.0, 0.0])
    )
    t = dt * jnp.arange(v_log.shape[0], dtype=jnp.float32)
    speeds = jnp.clip(v_log * profiles.speed_factor(t, speed, p), 0.0, dyn.max_speed)

    states, raw = profiles.plan_path(path, speeds, dt, dyn)
    no_lane = ((lateral > Lateral.NONE) & ~lat_ok[lateral]) | ((branch > 0) & ~ctx["base_ok"][branch])
    reasons = check(bank, i, states, raw, n_valid, dyn, cfg) | jnp.where(no_lane, int(RejectReason.NO_LANE), 0)
    return states, kin.clip_controls(raw, dyn), reasons.astype(jnp.int32), lateral, speed, branch


def generate_cousins(key: jax.Array, bank: Scenario, scenario_idx, cfg: CTGConfig, dyn: kin.DynamicsParams) -> Cousins:
    """`cfg.num_cousins` checked cousins of scenario `scenario_idx` (one env)."""
    i = jnp.asarray(scenario_idx, jnp.int32)
    steps = bank.num_steps
    n_valid = jnp.maximum(jnp.sum(bank.ego_valid[i]).astype(jnp.int32), 2)
    dt = bank.dt[i]
    n_total = steps + cfg.extra_steps
    t_idx = jnp.minimum(jnp.arange(n_total), n_valid - 1)
    v_log = jnp.maximum(bank.ego_traj[i, jnp.minimum(t_idx, steps - 1), 3], 0.0)
    v_log = jnp.maximum(paths.smooth(v_log[:, None], cfg.speed_smooth_window)[:, 0], 0.0)
    valid_v = jnp.where(jnp.arange(n_total) < n_valid, v_log, 0.0)
    v_ref = jnp.maximum(jnp.sum(valid_v) / n_valid, cfg.min_ref_speed)
    s_log = jnp.concatenate([jnp.zeros((1,)), jnp.cumsum(v_log * dt)[:-1]])
    bases, base_ok = paths.base_paths(
        bank, i, n_valid, cfg.path_spacing, cfg.path_points, cfg.chain_lanes, cfg.smooth_window
    )
    t_exit, _, alts, _ = paths.junction(bank, i, n_valid)
    ctx = dict(
        dt=dt,
        v_log=v_log,
        v_ref=v_ref,
        n_valid=n_valid,
        s_log=s_log,
        bases=bases,
        base_ok=base_ok,
        t_exit=t_exit,
        alts=alts,
    )
    keys = jax.random.split(key, cfg.num_cousins)
    ks = jnp.arange(cfg.num_cousins)
    states, controls, reasons, lateral, speed, branch = jax.vmap(
        lambda kk, k: _one_cousin(kk, k, ctx, bank, i, cfg, dyn)
    )(keys, ks)
    return Cousins(
        states=states,
        controls=controls,
        route_len=jnp.full((cfg.num_cousins,), n_valid, jnp.int32),
        reasons=reasons,
        lateral=lateral,
        speed=speed,
        branch=branch,
        num_steps=steps,
    )


def sample_cousins(
    key: jax.Array,
    params: EnvParams,
    scenario_idx: jnp.ndarray,
    cfg: CTGConfig,
    batched_params: bool = False,
    chunk: int = 0,
) -> Cousins:
    """Cousins for envs on scenarios `scenario_idx` (N,) -> `Cousins` with leading N.

    batched_params: `params.dynamics` carries a leading (N,) axis (per-env limits).
    chunk: if > 0, evaluate `chunk` envs at a time (`lax.map`) to bound memory.
    """
    n = scenario_idx.shape[0]
    keys = jax.random.split(key, n)
    dyn_axis = 0 if batched_params else None

    def one(args):
        k, idx, dyn = args
        return generate_cousins(k, params.bank, idx, cfg, dyn)

    if chunk and chunk < n:
        dyn = (
            params.dynamics
            if batched_params
            else jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x), (n,)), params.dynamics)
        )
        return jax.lax.map(one, (keys, scenario_idx, dyn), batch_size=chunk)
    return jax.vmap(lambda k, idx, dyn: one((k, idx, dyn)), in_axes=(0, 0, dyn_axis))(
        keys, scenario_idx, params.dynamics
    )
