"""Scripted drivers and IDM car following (simulator knowledge, usable by traffic actors
and as baselines), written per env: `policy(key, obs, state, params) -> action`.

All work in either action space of `DrivingEnv` (`scripted_policy(name, env)` picks the
right form): the expert follows the env's reference path (the log, or a CTG cousin),
the constant-velocity policy holds speed and heading, and the yielding policy steers
like the expert but keeps an IDM-style time gap to the nearest agent whose predicted
position (constant velocity over the next seconds) overlaps the ego's path ahead:
a scripted floor for the collision ratio against DAA cut-ins and hard brakes.
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import struct

from jaxsim import actions as act
from jaxsim.geometry import to_local
from jaxsim.kinematics import inverse


@struct.dataclass(frozen=True)
class YieldParams:
    """IDM-style car following (Treiber et al.) on the path ahead; SI units.

    time_gap s, min_gap m (bumper to bumper), comfort/max accelerations m/s^2, the
    half-width margin m added to both vehicles' half widths for "in my path", and the
    look-ahead times s at which agents' constant-velocity predictions are checked.
    """

    time_gap: float = struct.field(pytree_node=False, default=1.2)
    min_gap: float = struct.field(pytree_node=False, default=3.0)
    max_accel: float = struct.field(pytree_node=False, default=2.0)
    comfort_decel: float = struct.field(pytree_node=False, default=3.0)
    margin: float = struct.field(pytree_node=False, default=0.6)
    lookahead: tuple = struct.field(pytree_node=False, default=(0.0, 0.5, 1.0, 1.5, 2.0))


def lead_gap(ego, ego_size, agents, valid, sizes, yp: YieldParams = YieldParams(), behind: bool = False):
    """(gap m, closing speed m/s) to the nearest agent that is, or is predicted within
    `yp.lookahead` to be, ahead of the ego (behind it if `behind`) and laterally
    overlapping its lane corridor.

    ego (4,), ego_size (2,) [length, width], agents (A, 4), valid (A,), sizes (A, 2).
    gap is inf when no agent qualifies; closing speed (> 0: the gap shrinks) = ego speed
    - agent speed along the ego heading, or the reverse for an agent behind.
    """
    dyaw = agents[:, 2] - ego[2]
    sign = -1.0 if behind else 1.0  # mirror the ego frame to look backwards
    vel = agents[:, 3:4] * jnp.stack([sign * jnp.cos(dyaw), jnp.sin(dyaw)], axis=-1)  # ego frame
    rel = to_local(agents[:, :2], ego[None, :3]) * jnp.array([sign, 1.0])  # (A, 2)
    v_ego = sign * ego[3]
    taus = jnp.asarray(yp.lookahead, jnp.float32)
    # agent relative to where the ego will be (ego at constant speed along its heading)
    px = rel[None, :, 0] + (vel[None, :, 0] - v_ego) * taus[:, None]
    py = rel[None, :, 1] + vel[None, :, 1] * taus[:, None]
    half = 0.5 * (ego_size[1] + sizes[:, 1]) + yp.margin
    reach = 0.5 * (ego_size[0] + sizes[:, 0])
    overlap = (jnp.abs(py) < half[None]) & (px > -reach[None])  # (K, A)
    ahead = rel[:, 0] > 0.0
    hit = valid & ahead & jnp.any(overlap, axis=0)
    gap = jnp.where(hit, rel[:, 0] - reach, jnp.inf)
    j = jnp.argmin(gap)
    return gap[j], v_ego - vel[j, 0]


def idm_gap_ratio(speed, gap, closing, yp: YieldParams = YieldParams()):
    """IDM's desired gap over the actual one, s*/s (>= 0; 0 with no leader, gap inf)."""
    s_star = yp.min_gap + speed * yp.time_gap + speed * closing / (2.0 * jnp.sqrt(yp.max_accel * yp.comfort_decel))
    s = jnp.maximum(gap, 0.1)
    return jnp.maximum(s_star, 0.0) / s


def idm_follow_accel(speed, gap, closing, yp: YieldParams = YieldParams()):
    """IDM's interaction acceleration m/s^2 (free-road term left to the reference path)."""
    return yp.max_accel * (1.0 - idm_gap_ratio(speed, gap, closing, yp) ** 2)


POLICIES = ("expert", "constant-velocity", "yielding")


def expert_target(state, horizon_steps: int) -> jnp.ndarray:
    """Ego-frame displacement [lat, lon] (2,) to the reference point `horizon_steps` ahead."""
    last = state.route_len - 1
    target = state.route[jnp.minimum(state.t + horizon_steps, last), :2]
    local = to_local(target, state.ego[:3])
    return jnp.stack([local[1], local[0]])


def scripted_policy(name: str, env):
    """Per-env scripted policy `name` (one of `POLICIES`) for `env`'s action space."""
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; choose one of {', '.join(POLICIES)}")
    spec = env.discrete_spec
    horizon_steps = 5  # RAD's 0.5 s anchor horizon at 10 Hz logs
    discrete = env.config.action_space == "discrete"

    def expert(key, obs, state, params):
        if discrete:
            return act.nearest_anchor(expert_target(state, horizon_steps), spec)
        # continuous: the control that maps the current state onto the next logged one
        nxt = state.route[jnp.minimum(state.t + 1, state.route_len - 1)]
        return inverse(state.ego, nxt, params.bank.dt[state.scenario_idx], params.dynamics)

    def constant_velocity(key, obs, state, params):
        if discrete:
            disp = jnp.stack([jnp.zeros(()), state.ego[3] * spec.horizon])
            return act.nearest_anchor(disp, spec)
        return jnp.zeros((2,), jnp.float32)

    def yielding(key, obs, state, params):
        agents, valid, sizes = env.current_agents(state, params)
        ego_size = params.bank.ego_size[state.scenario_idx]
        gap, closing = lead_gap(state.ego, ego_size, agents, valid, sizes)
        a_follow = idm_follow_accel(state.ego[3], gap, closing)
        h = spec.horizon
        target = expert_target(state, horizon_steps)
        lon_follow = jnp.maximum(state.ego[3] * h + 0.5 * a_follow * h * h, 0.0)
        lon = jnp.minimum(target[1], lon_follow)
        if discrete:
            return act.nearest_anchor(jnp.stack([target[0], lon]), spec)
        ctrl = expert(key, obs, state, params)
        accel = jnp.minimum(ctrl[0], a_follow)
        return jnp.stack([jnp.maximum(accel, -params.dynamics.max_decel), ctrl[1]])

    return {"expert": expert, "constant-velocity": constant_velocity, "yielding": yielding}[name]
