"""Kinematic bicycle model with an analytic inverse.

State rows are `[x, y, yaw, speed]`, (x, y) being the box centre (the convention is
stated in `jaxsim.scenario`; the model integrates that point, as RAD's does); controls
are `[accel m/s^2, steer rad]`. The forward step is RAD's model,
x' = x + v cos(yaw) dt, y' = y + v sin(yaw) dt, yaw' = yaw + v / L tan(steer) dt, with
v' = v + a dt clipped to [0, max_speed] applied after the pose update (explicit Euler).
`inverse` recovers the controls that map one logged state onto the next, the way Waymax
recovers expert actions from logs.
Everything is elementwise, differentiable and broadcasts over leading dims.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxsim.geometry import wrap_angle


@struct.dataclass
class DynamicsParams:
    """Vehicle limits; a pytree so each env may carry its own.

    wheelbase: m (RAD: 2.765). max_steer: rad (RAD anchors: 49 deg). max_accel,
    max_decel: m/s^2 (both positive). max_speed: m/s (RAD anchors: 32).
    max_jerk: m/s^3, max_curvature: 1/m (trajectory checks; DAA/CTG feasibility).
    """

    wheelbase: jnp.ndarray = 2.765
    max_steer: jnp.ndarray = 0.8552  # 49 deg
    max_accel: jnp.ndarray = 4.0
    max_decel: jnp.ndarray = 8.0
    max_speed: jnp.ndarray = 32.0
    max_jerk: jnp.ndarray = 10.0
    max_lat_accel: jnp.ndarray = 6.0

    @property
    def max_curvature(self) -> jnp.ndarray:
        return jnp.tan(self.max_steer) / self.wheelbase


def clip_controls(controls: jnp.ndarray, p: DynamicsParams) -> jnp.ndarray:
    """Clip [accel, steer] (..., 2) to the limits in `p`."""
    accel = jnp.clip(controls[..., 0], -p.max_decel, p.max_accel)
    steer = jnp.clip(controls[..., 1], -p.max_steer, p.max_steer)
    return jnp.stack([accel, steer], axis=-1)


def step(state: jnp.ndarray, controls: jnp.ndarray, dt, p: DynamicsParams) -> jnp.ndarray:
    """One bicycle step. state (..., 4), controls (..., 2) already within limits."""
    x, y, yaw, v = state[..., 0], state[..., 1], state[..., 2], state[..., 3]
    accel, steer = controls[..., 0], controls[..., 1]
    x = x + v * jnp.cos(yaw) * dt
    y = y + v * jnp.sin(yaw) * dt
    yaw = wrap_angle(yaw + v / p.wheelbase * jnp.tan(steer) * dt)
    v = jnp.clip(v + accel * dt, 0.0, p.max_speed)
    return jnp.stack([x, y, yaw, v], axis=-1)


def inverse(state: jnp.ndarray, next_state: jnp.ndarray, dt, p: DynamicsParams) -> jnp.ndarray:
    """Controls [accel, steer] that move `state` to `next_state` under `step` (unclipped).

    accel = (v' - v) / dt; the yaw update gives tan(steer) = L * dyaw / (v dt). Where v is
    ~0 the heading cannot change and steer is set to 0.
    """
    v = state[..., 3]
    accel = (next_state[..., 3] - v) / dt
    dyaw = wrap_angle(next_state[..., 2] - state[..., 2])
    moving = v > 1e-3
    steer = jnp.where(moving, jnp.arctan(p.wheelbase * dyaw / jnp.where(moving, v, 1.0) / dt), 0.0)
    return jnp.stack([accel, steer], axis=-1)


def rollout(state: jnp.ndarray, controls: jnp.ndarray, dt, p: DynamicsParams) -> jnp.ndarray:
    """Apply a control sequence. state (4,), controls (H, 2) -> states (H, 4) after each step."""

    def body(s, u):
        s = step(s, clip_controls(u, p), dt, p)
        return s, s

    _, states = jax.lax.scan(body, state, controls)
    return states


def expert_controls(traj: jnp.ndarray, dt, p: DynamicsParams) -> jnp.ndarray:
    """Controls (T-1, 2) recovered from a logged trajectory (T, 4) by `inverse`."""
    return inverse(traj[:-1], traj[1:], dt, p)
