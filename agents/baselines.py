"""Scripted baseline policies, written per env: `policy(key, obs, state, params) -> action`.

Both work in either action space of `DrivingEnv` (`make_policy(name, env)` picks the
right form): the expert follows the env's reference path (the log, or a CTG cousin),
the constant-velocity policy holds speed and heading.
"""
from __future__ import annotations

import jax.numpy as jnp

from jaxsim import actions as act
from jaxsim.geometry import to_local
from jaxsim.kinematics import inverse

POLICIES = ("expert", "constant-velocity")


def expert_target(state, horizon_steps: int) -> jnp.ndarray:
    """Ego-frame displacement [lat, lon] (2,) to the reference point `horizon_steps` ahead."""
    last = state.route_len - 1
    target = state.route[jnp.minimum(state.t + horizon_steps, last), :2]
    local = to_local(target, state.ego[:3])
    return jnp.stack([local[1], local[0]])


def make_policy(name: str, env):
    """Per-env policy function for `env`'s action space."""
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

    return expert if name == "expert" else constant_velocity
