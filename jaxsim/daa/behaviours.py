"""The closed-loop adversary: a bicycle-model vehicle driven from the ego's simulated state.

Until its trigger fires, a logged adversary replays its log (a spawned one keeps its
lane offset and speed). The trigger is evaluated every step on the *simulated* ego
(bumper gap along the ego's heading and time-to-collision, see `params`), so a policy
that slows early meets the adversary later, or never. Once triggered:

  cut-in / merge: a gap controller places the vehicle `final_gap` ahead of the ego; once
    it will be clear ahead at the lane edge it moves into the ego's lane along a quintic
    lateral profile of duration `lat_duration`, then holds ego speed + `speed_offset`.
  lane change:    moves into the ego's lane at once (quintic over `lat_duration`) at
    ego speed at trigger + `speed_offset`.
  hard brake:     brakes at `decel` to a stop, keeping its lane.

The lateral reference is the ego's lane at trigger (the log's `ego_lane`, the lane the
ego must follow within RAD's 2 m deviation limit). Controls are computed in closed form
(feedforward quintic curvature + heading feedback; speed P-control) and limited to 90%
of the `DynamicsParams` bounds on steer, curvature, lateral acceleration, acceleration
and jerk before the same `kinematics.step` the ego uses, so every path is kinematically
feasible by construction and differentiable in the knobs.
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import struct

from jaxsim import kinematics as kin
from jaxsim.daa.frames import lane_frame
from jaxsim.daa.params import Behaviour, Knobs
from jaxsim.geometry import to_local, wrap_angle

K_LAT = 0.8  # 1/s, lateral-offset feedback
T_HEADING = 0.35  # s, heading-error time constant
K_GAP = 0.6  # 1/s, gap controller (cut-in / merge)
K_SPEED = 1.5  # 1/s, speed controller
MARGIN = 0.9  # fraction of each dynamics limit the controller may use
STEER_RATE = 1.0  # rad/s
MAX_REL_SPEED = 5.0  # m/s, cut-in approach speed relative to the ego (CARLA: ~3 m/s)


@struct.dataclass
class AdvState:
    """One env's adversary. Scalars are () unless noted.

    slot: int32 agent slot it drives (-1: none). behaviour: int32 effective `Behaviour`
    (KEEP_LOG when the episode fell back to plain). spawned: bool, placed in an unused
    slot. knobs: the accepted candidate. size (2,) m. pose (4,) [x, y, yaw, speed] at the
    current step. controls (2,) last [accel, steer]. visible: bool, shown to the ego.
    triggered: bool. t_trigger: int32 log step of the trigger (-1). tau: s since the
    lateral move began (-1: not begun). d_hold: m lateral target before the move.
    v_hold: m/s speed target after the move. lane: int32 lateral reference lane.
    reason: int32 `check.Reason` of the first candidate; status: of the accepted one
    (OK) or of the fallback; tries: int32 candidates evaluated.
    """

    slot: jnp.ndarray
    behaviour: jnp.ndarray
    spawned: jnp.ndarray
    knobs: Knobs
    size: jnp.ndarray
    pose: jnp.ndarray
    controls: jnp.ndarray
    visible: jnp.ndarray
    triggered: jnp.ndarray
    t_trigger: jnp.ndarray
    tau: jnp.ndarray
    d_hold: jnp.ndarray
    v_hold: jnp.ndarray
    lane: jnp.ndarray
    reason: jnp.ndarray
    status: jnp.ndarray
    tries: jnp.ndarray

    @classmethod
    def off(cls) -> "AdvState":
        """The inert adversary of a DAA-disabled env."""
        i0, f0, b0 = jnp.zeros((), jnp.int32), jnp.zeros((), jnp.float32), jnp.zeros((), bool)
        return cls(
            slot=-jnp.ones((), jnp.int32), behaviour=i0, spawned=b0,
            knobs=Knobs(*(f0 for _ in range(6))), size=jnp.zeros((2,), jnp.float32),
            pose=jnp.zeros((4,), jnp.float32), controls=jnp.zeros((2,), jnp.float32), visible=b0,
            triggered=b0, t_trigger=-jnp.ones((), jnp.int32), tau=-jnp.ones((), jnp.float32),
            d_hold=f0, v_hold=f0, lane=-jnp.ones((), jnp.int32), reason=i0, status=i0, tries=i0,
        )  # fmt: skip

    @property
    def active(self) -> jnp.ndarray:
        return (self.slot >= 0) & (self.behaviour != Behaviour.KEEP_LOG)


def quintic(u):
    """Smooth-step 10u^3 - 15u^4 + 6u^5 and its first two derivatives, u clipped to [0, 1]."""
    u = jnp.clip(u, 0.0, 1.0)
    q = u**3 * (10.0 - 15.0 * u + 6.0 * u * u)
    dq = 30.0 * u * u * (1.0 - u) ** 2
    ddq = 60.0 * u * (1.0 - u) * (1.0 - 2.0 * u)
    return q, dq, ddq


def relation(adv_pose, adv_size, ego, ego_size):
    """(gap m, |gap| m, ttc s) of the adversary w.r.t. the ego along the ego's heading.

    gap: bumper gap ahead of the ego (< 0 when alongside or behind); near: gap measured
    to whichever side the adversary is on; ttc: gap / closing speed (inf if not closing).
    """
    rel = to_local(adv_pose[:2], ego[:3])
    half = 0.5 * (ego_size[0] + adv_size[0])
    gap = rel[0] - half
    near = jnp.abs(rel[0]) - half
    closing = ego[3] - adv_pose[3] * jnp.cos(adv_pose[2] - ego[2])
    ttc = jnp.where((gap > 0.0) & (closing > 0.1), gap / jnp.maximum(closing, 0.1), jnp.inf)
    return gap, near, ttc


def adversary_step(adv: AdvState, ego, ego_size, t, bank, i, dyn: kin.DynamicsParams, dt) -> AdvState:
    """Advance the adversary from log step t to t + 1 given the ego's state (4,) at t."""
    k, b = adv.knobs, adv.behaviour
    is_cut = (b == Behaviour.CUT_IN_LEFT) | (b == Behaviour.CUT_IN_RIGHT) | (b == Behaviour.MERGE)
    is_brake, is_lc = b == Behaviour.HARD_BRAKE, b == Behaviour.LANE_CHANGE
    gap, near, ttc = relation(adv.pose, adv.size, ego, ego_size)

    # trigger, on the simulated ego
    fire = jnp.where(
        is_cut, near <= k.trigger_gap, ((gap <= k.trigger_gap) & (gap > -adv.size[0])) | (ttc <= k.trigger_ttc)
    )
    trigger_now = adv.active & ~adv.triggered & adv.visible & fire
    triggered = adv.triggered | trigger_now
    ego_lane = bank.ego_lane[i, t]
    lane = jnp.where(trigger_now & (ego_lane >= 0), ego_lane, adv.lane)
    d, lane_yaw = lane_frame(bank.lane_points[i, lane], bank.lane_num_points[i, lane], adv.pose[:2])

    # lateral profile: hold an offset, then a quintic from d_start to the lane centre
    # a cut-in starts moving over once it will be clear ahead of the ego when it reaches
    # the lane edge (about half-way through the move, at the current relative speed)
    dur = jnp.maximum(k.lat_duration, 0.1)
    v_rel = adv.pose[3] * jnp.cos(adv.pose[2] - ego[2]) - ego[3]
    clear = gap + 0.5 * dur * v_rel >= 0.0
    start_now = triggered & (adv.tau < 0.0) & (is_lc | is_brake | (is_cut & clear))
    tau = jnp.where(start_now, 0.0, adv.tau)
    moving = tau >= 0.0
    d_hold = jnp.where(trigger_now, d, adv.d_hold)  # d_hold doubles as the move's start offset
    q, dq, ddq = quintic(tau / dur)
    d_ref = jnp.where(moving, d_hold * (1.0 - q), d_hold)
    dd_ref = jnp.where(moving, -d_hold * dq / dur, 0.0)
    ddd_ref = jnp.where(moving, -d_hold * ddq / (dur * dur), 0.0)
    v = adv.pose[3]
    v_eff = jnp.maximum(v, 1.0)
    psi_ref = jnp.arctan2(dd_ref + K_LAT * (d_ref - d), v_eff)
    heading_err = wrap_angle(lane_yaw + psi_ref - adv.pose[2])
    curv = ddd_ref / (v_eff * v_eff) + heading_err / (v_eff * T_HEADING)
    curv_max = MARGIN * jnp.minimum(dyn.max_curvature, dyn.max_lat_accel / jnp.maximum(v * v, 1e-3))
    steer = jnp.arctan(jnp.clip(curv, -curv_max, curv_max) * dyn.wheelbase)
    steer = jnp.clip(steer, adv.controls[1] - STEER_RATE * dt, adv.controls[1] + STEER_RATE * dt)

    # longitudinal
    done = moving & (tau >= dur)
    latch = (is_cut & done & (tau < dur + dt)) | (is_lc & trigger_now)
    v_hold = jnp.where(latch, jnp.maximum(ego[3] + k.speed_offset, 0.0), adv.v_hold)
    v_gap = ego[3] + jnp.clip(K_GAP * (k.final_gap - gap), -MAX_REL_SPEED, MAX_REL_SPEED)
    v_cmd = jnp.where(is_cut & triggered & ~done, v_gap, v_hold)
    v_cmd = jnp.clip(v_cmd, 0.0, 0.95 * dyn.max_speed)
    decel_lim = MARGIN * dyn.max_decel
    accel = jnp.clip(K_SPEED * (v_cmd - v), -decel_lim, MARGIN * dyn.max_accel)
    accel = jnp.where(is_brake & triggered, -jnp.minimum(k.decel, decel_lim), accel)
    # stop without a jerk spike: with |a| <= a_stop(v) (discrete a^2 / 2j + |a| dt / 2 = v)
    # the jerk limit can still bring a back to 0 exactly when v reaches 0
    jerk = MARGIN * dyn.max_jerk
    j_stop = 0.8 * dyn.max_jerk
    a_stop = jnp.sqrt((0.5 * j_stop * dt) ** 2 + 2.0 * j_stop * v + 1e-9) - 0.5 * j_stop * dt
    accel = jnp.maximum(accel, -a_stop)
    accel = jnp.clip(accel, adv.controls[0] - jerk * dt, adv.controls[0] + jerk * dt)
    accel = jnp.maximum(accel, -v / dt)
    controls = jnp.stack([accel, steer])
    sim_pose = kin.step(adv.pose, controls, dt, dyn)

    # before the trigger a logged adversary replays its log
    controlled = adv.spawned | triggered
    slot = jnp.maximum(adv.slot, 0)
    t1 = jnp.minimum(t + 1, bank.agent_traj.shape[1] - 1)
    log_now, log_next = bank.agent_traj[i, t, slot], bank.agent_traj[i, t1, slot]
    log_controls = kin.inverse(log_now, log_next, dt, dyn)
    return adv.replace(
        pose=jnp.where(controlled, sim_pose, log_next),
        controls=jnp.where(controlled, controls, log_controls),
        visible=controlled | bank.agent_valid[i, t1, slot],
        triggered=triggered,
        t_trigger=jnp.where(trigger_now, t, adv.t_trigger),
        tau=jnp.where(moving, tau + dt, -1.0),
        d_hold=d_hold,
        v_hold=v_hold,
        lane=lane,
    )
