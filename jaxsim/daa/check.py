"""Trajectory check and episode planning: every adversary is checked before it is used.

`check_trajectory` validates an emitted adversary path (from its trigger on) against the
bicycle limits, the drivable area and the ego box at the trigger, and returns a
`Reason`. `plan` runs at reset: it selects the target, rolls each candidate knob set out
against the nominal ego (the reference route) with the same closed-loop controller the
env uses, keeps the first candidate that passes, and otherwise falls back to a plain
episode, recording why in `AdvState.status`.

Fair adversaries: a candidate that passes every check is still rejected as
`UNAVOIDABLE` when no reasonable driver could avoid it (`unavoidable`: full braking
from the logged ego state at the trigger, along the ego's path, still collides with
the adversary's plan), unless `DAAParams.keep_unavoidable` (stress tests).
"""

from __future__ import annotations

import enum

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim import kinematics as kin
from jaxsim.daa import select as sel
from jaxsim.daa.behaviours import AdvState, adversary_step
from jaxsim.daa.frames import lane_frame, nearest_lane
from jaxsim.daa.params import Behaviour, DAAParams, Fallback, Knobs, sample_knobs
from jaxsim.geometry import box_corners, box_overlap, sdf_lookup, wrap_angle


class Reason(enum.IntEnum):
    OK = 0
    CURVATURE = 1  # curvature or lateral acceleration beyond the limits
    ACCELERATION = 2  # longitudinal acceleration or deceleration beyond the limits
    JERK = 3
    OFFROAD = 4  # a box corner leaves the drivable area
    OVERLAP = 5  # already overlapping the ego at the trigger
    CONFLICT = 6  # runs into another (log-replayed) agent
    NO_TRIGGER = 7  # the trigger never fires against the nominal ego
    NO_TARGET = 8  # no vehicle qualifies and no slot to spawn in
    UNAVOIDABLE = 9  # even full braking from the logged ego state at the trigger collides


REASON_NAMES = tuple(r.name.lower() for r in Reason)
TOL = 1.05  # relative tolerance of the check over the dynamics limits
OFFROAD_MARGIN = 0.1  # m of SDF tolerated at the box corners


def check_trajectory(
    traj,
    start,
    t_trigger,
    ego_traj,
    ego_size,
    adv_size,
    sdf_bank,
    i,
    origin,
    res,
    dyn,
    dt,
    others=None,
    others_valid=None,
):
    """Reason () int32 for one adversary path.

    Args: traj (T, 4) adversary states; start () int32 first step under DAA control
      (trigger or spawn); t_trigger () int32 (-1: never triggered); ego_traj (T, 4) the ego
      the path was planned against; ego_size, adv_size (2,); sdf_bank (N, H, W) with the
      env's index i, origin (2,), res (); dyn: DynamicsParams; dt () s.
      others (T, A, 5) / others_valid (T, A): boxes of the other agents (optional).
    Steps k >= start are checked (accelerations from start - 1, so the hand-over from the
    log is included).
    """
    T = traj.shape[0]
    k = jnp.arange(T - 1)
    v = traj[:, 3]
    acc = (v[1:] - v[:-1]) / dt
    dyaw = wrap_angle(traj[1:, 2] - traj[:-1, 2])
    moving = v[:-1] > 0.5
    curv = jnp.where(moving, dyaw / jnp.maximum(v[:-1] * dt, 1e-6), 0.0)
    on = k >= start
    bad_curv = jnp.any(
        on & ((jnp.abs(curv) > TOL * dyn.max_curvature) | (v[:-1] ** 2 * jnp.abs(curv) > TOL * dyn.max_lat_accel))
    )
    on_acc = k >= start - 1
    bad_acc = jnp.any(on_acc & ((acc > TOL * dyn.max_accel) | (acc < -TOL * dyn.max_decel)))
    jerk = (acc[1:] - acc[:-1]) / dt
    bad_jerk = jnp.any(on_acc[:-1] & (jnp.abs(jerk) > TOL * dyn.max_jerk))
    boxes = jnp.concatenate([traj[:, :3], jnp.broadcast_to(adv_size, (T, 2))], axis=-1)
    sd = jnp.max(sdf_lookup(sdf_bank, origin, res, box_corners(boxes), index=i), axis=-1)
    bad_road = jnp.any((jnp.arange(T) >= start) & (sd > OFFROAD_MARGIN))
    tt = jnp.clip(t_trigger, 0, T - 1)
    ego_box = jnp.concatenate([ego_traj[tt, :3], ego_size])
    bad_overlap = (t_trigger >= 0) & box_overlap(ego_box, boxes[tt])
    bad_conflict = jnp.zeros((), bool)
    if others is not None:
        hit = box_overlap(boxes[:, None], others) & others_valid
        bad_conflict = jnp.any(hit & (jnp.arange(T) >= start)[:, None])
    return jnp.select(
        [bad_overlap, bad_road, bad_curv, bad_acc, bad_jerk, bad_conflict, t_trigger < 0],
        [
            Reason.OVERLAP,
            Reason.OFFROAD,
            Reason.CURVATURE,
            Reason.ACCELERATION,
            Reason.JERK,
            Reason.CONFLICT,
            Reason.NO_TRIGGER,
        ],
        Reason.OK,
    ).astype(jnp.int32)


def braking_ego(ego_traj, t_start, decel, dt):
    """The ego (T, 4) following `ego_traj` (T, 4) up to step `t_start`, then braking at
    `decel` m/s^2 to a stop along the same path (positions and headings interpolated
    by arc length)."""
    T = ego_traj.shape[0]
    seg = jnp.sqrt(jnp.sum(jnp.diff(ego_traj[:, :2], axis=0) ** 2, -1) + 1e-12)
    s_path = jnp.concatenate([jnp.zeros((1,)), jnp.cumsum(seg)])
    ts = jnp.clip(t_start, 0, T - 1)
    v0 = ego_traj[ts, 3]
    tau = jnp.maximum(jnp.arange(T) - ts, 0) * dt
    stop = v0 / jnp.maximum(decel, 1e-3)
    dist = jnp.where(tau < stop, v0 * tau - 0.5 * decel * tau * tau, 0.5 * v0 * stop)
    after = jnp.arange(T) > ts
    s = jnp.where(after, s_path[ts] + dist, s_path)
    x, y = jnp.interp(s, s_path, ego_traj[:, 0]), jnp.interp(s, s_path, ego_traj[:, 1])
    c, sn = jnp.interp(s, s_path, jnp.cos(ego_traj[:, 2])), jnp.interp(s, s_path, jnp.sin(ego_traj[:, 2]))
    v = jnp.where(after, jnp.maximum(v0 - decel * tau, 0.0), ego_traj[:, 3])
    braked = jnp.stack([x, y, jnp.arctan2(sn, c), v], -1)
    return jnp.where(after[:, None], braked, ego_traj)


def unavoidable(traj, t_trigger, ego_traj, ego_size, adv_size, dyn, dt) -> jnp.ndarray:
    """bool (): the adversary path `traj` (T, 4) hits the ego even if the ego brakes fully
    (`dyn.max_decel`) from its logged state at the trigger (`braking_ego`); False when
    it never triggers. ego_traj (T, 4) the logged (nominal) ego; sizes (2,) m."""
    T = traj.shape[0]
    ego = braking_ego(ego_traj, t_trigger, dyn.max_decel, dt)
    ego_boxes = jnp.concatenate([ego[:, :3], jnp.broadcast_to(ego_size, (T, 2))], -1)
    adv_boxes = jnp.concatenate([traj[:, :3], jnp.broadcast_to(adv_size, (T, 2))], -1)
    hit = box_overlap(ego_boxes, adv_boxes) & (jnp.arange(T) >= t_trigger)
    return (t_trigger >= 0) & jnp.any(hit)


def rollout(adv: AdvState, ego_traj, ego_size, bank, i, dyn, dt):
    """Adversary states (T, 4) and final AdvState against a given ego trajectory (T, 4)."""

    def body(a, t):
        a = adversary_step(a, ego_traj[t], ego_size, t, bank, i, dyn, dt)
        return a, a.pose

    T = ego_traj.shape[0]
    last, poses = jax.lax.scan(body, adv, jnp.arange(T - 1))
    return jnp.concatenate([adv.pose[None], poses], axis=0), last


def nominal_ego(route, route_len):
    """The route padded past its end by holding the last valid state (T, 4)."""
    T = route.shape[0]
    return route[jnp.minimum(jnp.arange(T), route_len - 1)]


def plan(key, daa: DAAParams, bank, i, route, route_len, dyn: kin.DynamicsParams) -> AdvState:
    """The adversary for an episode on scenario i starting at route[0] (see module docstring)."""
    dt = bank.dt[i]
    ego = route[0]
    ego_size = bank.ego_size[i]
    log_lane = bank.ego_lane[i, 0]
    lane = jnp.where(log_lane >= 0, log_lane, nearest_lane(bank.lane_points[i], bank.lane_num_points[i], ego))
    lane_c = jnp.maximum(lane, 0)
    lane_pts, lane_n, lane_w = bank.lane_points[i, lane_c], bank.lane_num_points[i, lane_c], bank.lane_width[i, lane_c]
    has_left, has_right = bank.lane_left[i, lane_c] >= 0, bank.lane_right[i, lane_c] >= 0
    types = bank.agent_type[i]
    slot, found = sel.select_target(
        daa.behaviour, ego, ego_size, lane_pts, lane_n, lane_w, has_left, has_right,
        bank.agent_traj[i, 0], bank.agent_valid[i, 0], bank.agent_size[i], types,
    )  # fmt: skip
    found = found & (lane >= 0)
    free, has_free = sel.free_slot(jnp.any(bank.agent_valid[i], axis=0), types)
    can_spawn = (daa.fallback == Fallback.SPAWN) & has_free & (lane >= 0)
    d_ego, _ = lane_frame(lane_pts, lane_n, ego[:2])
    ego_traj = nominal_ego(route, route_len)
    others = jnp.concatenate(
        [bank.agent_traj[i][..., :3], jnp.broadcast_to(bank.agent_size[i], bank.agent_valid[i].shape + (2,))], -1
    )

    budget = daa.budget
    keys = jax.random.split(key, budget)
    cands = jax.vmap(lambda kk: sample_knobs(kk, daa.behaviour, daa.lo, daa.hi))(keys)
    cands = jax.tree.map(lambda c, k0: c.at[0].set(k0), cands, daa.knobs)
    # the last candidate is a spawn when the fallback allows it (all are, without a target)
    spawn = ~found | ((jnp.arange(budget) == budget - 1) & (budget > 1) & can_spawn)

    def candidate(knobs: Knobs, use_spawn):
        spawn_pose, d_spawn = sel.spawn_pose(daa.behaviour, knobs, ego, ego_size, d_ego, lane_w, has_left)
        pose = jnp.where(use_spawn, spawn_pose, bank.agent_traj[i, 0, slot])
        adv = AdvState.off().replace(
            slot=jnp.where(use_spawn, free, slot), behaviour=jnp.asarray(daa.behaviour, jnp.int32),
            spawned=use_spawn, knobs=knobs,
            size=jnp.where(use_spawn, jnp.asarray(sel.SPAWN_SIZE, jnp.float32), bank.agent_size[i, slot]),
            pose=pose, controls=jnp.zeros((2,), jnp.float32),
            visible=jnp.where(use_spawn, True, bank.agent_valid[i, 0, slot]),
            d_hold=jnp.where(use_spawn, d_spawn, 0.0), v_hold=pose[3], lane=lane,
        )  # fmt: skip
        traj, last = rollout(adv, ego_traj, ego_size, bank, i, dyn, dt)
        start = jnp.where(use_spawn, 0, last.t_trigger)
        not_me = jnp.arange(others.shape[1]) != adv.slot
        reason = check_trajectory(
            traj, start, last.t_trigger, ego_traj, ego_size, adv.size, bank.sdf, i, bank.sdf_origin[i],
            bank.sdf_res[i], dyn, dt, others, bank.agent_valid[i] & not_me[None],
        )  # fmt: skip
        if not daa.keep_unavoidable:  # static: stress tests skip the fairness check
            unfair = unavoidable(traj, last.t_trigger, ego_traj, ego_size, adv.size, dyn, dt)
            reason = jnp.where((reason == Reason.OK) & unfair, Reason.UNAVOIDABLE, reason).astype(jnp.int32)
        possible = jnp.where(use_spawn, can_spawn, found)
        return adv, jnp.where(possible, reason, Reason.NO_TARGET)

    advs, reasons = jax.vmap(candidate)(cands, spawn)
    ok = reasons == Reason.OK
    pick = jnp.argmax(ok)
    chosen = jax.tree.map(lambda x: x[pick], advs)
    any_ok = ok[pick] & (daa.behaviour != Behaviour.KEEP_LOG)
    status = jnp.where(any_ok, Reason.OK, reasons[0]).astype(jnp.int32)
    plain = AdvState.off().replace(knobs=daa.knobs, lane=lane)
    out = jax.tree.map(lambda c, p: jnp.where(any_ok, c, p), chosen, plain)
    reason0 = jnp.where(daa.behaviour == Behaviour.KEEP_LOG, Reason.OK, reasons[0]).astype(jnp.int32)
    return out.replace(
        reason=reason0, status=jnp.where(daa.behaviour == Behaviour.KEEP_LOG, Reason.OK, status),
        tries=jnp.where(any_ok, pick + 1, budget).astype(jnp.int32),
    )  # fmt: skip


def reason_shares(reasons) -> dict[str, float]:
    """Share of each `Reason` in an array of reason codes (e.g. AdvState.reason over envs)."""
    r = np.asarray(reasons).ravel()
    n = max(len(r), 1)
    return {name: float(np.sum(r == code)) / n for code, name in enumerate(REASON_NAMES)}
