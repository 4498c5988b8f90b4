"""Trajectory check: dynamic feasibility through the bicycle inverse, the drivable area
through the SDF grid, and (optionally) overlap with logged agents and static boxes.

`check` returns a `RejectReason` bit mask (int32, 0 = accepted) for one trajectory of one
env; only steps t < route_len are judged (the states beyond are look-ahead padding).
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxsim import kinematics as kin
from jaxsim.ctg.config import REASON_PRIORITY, CTGConfig, RejectReason
from jaxsim.geometry import box_corners, box_overlap, sdf_lookup, wrap_angle
from jaxsim.scenario import Scenario


def _bit(flag, reason: RejectReason) -> jnp.ndarray:
    return jnp.where(jnp.any(flag), jnp.int32(int(reason)), jnp.int32(0))


def check(
    bank: Scenario, i, states: jnp.ndarray, controls: jnp.ndarray, route_len, dyn: kin.DynamicsParams, cfg: CTGConfig
) -> jnp.ndarray:
    """RejectReason bits () int32 for states (N, 4) driven by raw controls (N-1, 2) [accel, steer].

    Limits come from `dyn` (with `cfg.limit_slack` relative slack): steer (curvature),
    lateral acceleration v * yaw_rate, acceleration, speed, longitudinal and lateral
    jerk; then the ego box corners against the SDF and the box against logged agents at
    the same log step.
    """
    dt = bank.dt[i]
    n_states = states.shape[0]
    slack = 1.0 + cfg.limit_slack
    t_ctrl = jnp.arange(n_states - 1) < route_len - 1
    t_jerk = jnp.arange(n_states - 2) < route_len - 2
    t_state = jnp.arange(n_states) < route_len
    accel, steer = controls[:, 0], controls[:, 1]
    lat = states[:-1, 3] * wrap_angle(states[1:, 2] - states[:-1, 2]) / dt
    long_jerk = jnp.diff(accel) / dt
    lat_jerk = jnp.diff(lat) / dt

    bits = _bit(~(jnp.all(jnp.isfinite(states)) & jnp.all(jnp.isfinite(controls))), RejectReason.NONFINITE)
    bits |= _bit(t_ctrl & (jnp.abs(steer) > dyn.max_steer * slack), RejectReason.CURVATURE)
    bits |= _bit(t_ctrl & (jnp.abs(lat) > dyn.max_lat_accel * slack), RejectReason.LAT_ACCEL)
    bits |= _bit(t_ctrl & ((accel > dyn.max_accel * slack) | (accel < -dyn.max_decel * slack)), RejectReason.ACCEL)
    bits |= _bit(t_state & (states[:, 3] > dyn.max_speed * slack), RejectReason.SPEED)
    jerk_bad = (jnp.abs(long_jerk) > dyn.max_jerk * slack) | (jnp.abs(lat_jerk) > dyn.max_jerk * slack)
    bits |= _bit(t_jerk & jerk_bad, RejectReason.JERK)

    boxes = jnp.concatenate([states[:, :3], jnp.broadcast_to(bank.ego_size[i], (n_states, 2))], axis=-1)
    corners = sdf_lookup(bank.sdf, bank.sdf_origin[i], bank.sdf_res[i], box_corners(boxes), index=i)
    bits |= _bit(t_state & (jnp.max(corners, axis=-1) > cfg.offroad_margin), RejectReason.OFFROAD)

    if cfg.check_agents:
        steps = min(bank.num_steps, n_states)
        own = boxes[:steps]
        agents = bank.agent_traj[i, :steps]  # (T, A, 4)
        agent_boxes = jnp.concatenate(
            [agents[..., :3], jnp.broadcast_to(bank.agent_size[i], agents.shape[:-1] + (2,))], axis=-1
        )
        hit = box_overlap(own[:, None], agent_boxes) & bank.agent_valid[i, :steps] & t_state[:steps, None]
        static = box_overlap(own[:, None], bank.static_boxes[i][None]) & bank.static_valid[i] & t_state[:steps, None]
        bits |= _bit(hit, RejectReason.COLLISION) | _bit(static, RejectReason.COLLISION)
    return bits


def check_states(
    bank: Scenario, i, states: jnp.ndarray, route_len, dyn: kin.DynamicsParams, cfg: CTGConfig
) -> jnp.ndarray:
    """`check` for any trajectory (N, 4): controls are recovered with `kinematics.inverse`."""
    controls = kin.inverse(states[:-1], states[1:], bank.dt[i], dyn)
    return check(bank, i, states, controls, route_len, dyn, cfg)


def primary_reason(bits: jnp.ndarray) -> jnp.ndarray:
    """The first set bit in `REASON_PRIORITY` order (0 if accepted); works elementwise."""
    out = jnp.zeros_like(bits)
    for r in reversed(REASON_PRIORITY):
        out = jnp.where((bits & int(r)) != 0, int(r), out)
    return out
