"""Lateral and speed profiles, and time-parameterisation of a path into bicycle states.

A cousin is a geometric path (base path + quintic lateral offset) and a speed profile.
`time_parameterise` turns them into states [x, y, yaw, speed] at the env's dt such that
the explicit-Euler bicycle model reproduces them: yaw_t is the path heading at the
midpoint of step t's arc and x_{t+1} = x_t + v_t dt (cos yaw_t, sin yaw_t). `replay`
recovers the controls with `kinematics.inverse` and re-integrates them with
`kinematics.rollout`, so a cousin *is* a bicycle rollout, bit for bit.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxsim import kinematics as kin
from jaxsim.ctg.config import Speed
from jaxsim.ctg.paths import cumulative_arc, vertex_headings
from jaxsim.geometry import wrap_angle

QUINTIC_PEAK_RATE = 1.875  # max of d/du of the quintic smoothstep
QUINTIC_PEAK_ACCEL = 5.7735  # max of d2/du2
QUINTIC_PEAK_JERK = 60.0  # max of |d3/du3| (at u = 0 and 1)


def quintic(u: jnp.ndarray) -> jnp.ndarray:
    """Smoothstep 10u^3 - 15u^4 + 6u^5 on [0, 1] (clamped): zero 1st and 2nd derivative at both ends."""
    u = jnp.clip(u, 0.0, 1.0)
    return u * u * u * (10.0 + u * (-15.0 + 6.0 * u))


def ramp_duration(delta_v, sampled, comfort_accel, comfort_jerk):
    """Duration (s) of a quintic speed ramp by `delta_v` m/s: at least `sampled`, and
    long enough that peak acceleration (1.875 dv / T) and jerk (5.77 dv / T^2) are
    within the comfort limits."""
    dv = jnp.abs(delta_v)
    by_accel = QUINTIC_PEAK_RATE * dv / comfort_accel
    by_jerk = jnp.sqrt(QUINTIC_PEAK_ACCEL * dv / comfort_jerk)
    return jnp.maximum(jnp.maximum(sampled, by_accel), by_jerk)


def shift_duration(delta, sampled, comfort_accel, comfort_jerk):
    """Duration (s) of a quintic lateral shift by `delta` m: at least `sampled`, and long
    enough that peak lateral acceleration (5.77 d / T^2) and jerk (60 d / T^3) are
    within the comfort limits."""
    d = jnp.abs(delta)
    by_accel = jnp.sqrt(QUINTIC_PEAK_ACCEL * d / comfort_accel)
    by_jerk = jnp.cbrt(QUINTIC_PEAK_JERK * d / comfort_jerk)
    return jnp.maximum(jnp.maximum(sampled, by_accel), by_jerk)


def lateral_offset(s: jnp.ndarray, start, length, target) -> jnp.ndarray:
    """Signed lateral offset (m, + left) at base arc lengths `s` (Q,): 0 before `start`,
    `target` after `start + length`, quintic in between."""
    return target * quintic((s - start) / jnp.maximum(length, 1e-3))


def offset_path(base: jnp.ndarray, lateral: jnp.ndarray) -> jnp.ndarray:
    """Shift path points (Q, 2) by `lateral` (Q,) m along the left normal of the base."""
    h = vertex_headings(base)
    normal = jnp.stack([-jnp.sin(h), jnp.cos(h)], axis=-1)
    return base + lateral[:, None] * normal


def speed_factor(t: jnp.ndarray, kind, p: jnp.ndarray) -> jnp.ndarray:
    """Multiplier (N,) of the logged speed at times `t` (N,) s for a `Speed` family.

    p (5,): SLOWER/FASTER use [factor, start, ramp]; STOP_GO uses
    [start, stop ramp, dwell, go ramp, unused].
    """
    ramp = 1.0 + (p[0] - 1.0) * quintic((t - p[1]) / jnp.maximum(p[2], 1e-3))
    t_go = p[0] + p[1] + p[2]
    stop_go = 1.0 - quintic((t - p[0]) / jnp.maximum(p[1], 1e-3)) + quintic((t - t_go) / jnp.maximum(p[3], 1e-3))
    return jnp.select(
        [kind == Speed.SLOWER, kind == Speed.FASTER, kind == Speed.STOP_GO],
        [ramp, ramp, stop_go],
        jnp.ones_like(t),
    )


def time_parameterise(path: jnp.ndarray, speeds: jnp.ndarray, dt) -> jnp.ndarray:
    """States (N, 4) that drive along `path` (Q, 2) from its first point at `speeds` (N,).

    Beyond the end of the path the heading is held (straight continuation).
    """
    cum = cumulative_arc(path)
    seg = jnp.diff(path, axis=0)
    heading = jnp.unwrap(jnp.arctan2(seg[:, 1], seg[:, 0]))
    s_mid = 0.5 * (cum[:-1] + cum[1:])
    step = speeds * dt
    s = jnp.concatenate([jnp.zeros((1,)), jnp.cumsum(step)[:-1]])
    yaw = jnp.interp(s + 0.5 * step, s_mid, heading)
    dx = step * jnp.cos(yaw)
    dy = step * jnp.sin(yaw)
    x = path[0, 0] + jnp.concatenate([jnp.zeros((1,)), jnp.cumsum(dx)[:-1]])
    y = path[0, 1] + jnp.concatenate([jnp.zeros((1,)), jnp.cumsum(dy)[:-1]])
    return jnp.stack([x, y, wrap_angle(yaw), speeds], axis=-1)


def replay(planned: jnp.ndarray, dt, dyn: kin.DynamicsParams):
    """Controls from planned states (N, 4) by the inverse model, re-integrated.

    Returns (states (N, 4) from `kinematics.rollout` of the clipped controls,
    raw controls (N-1, 2) before clipping, for the feasibility check).
    """
    raw = kin.inverse(planned[:-1], planned[1:], dt, dyn)
    states = kin.rollout(planned[0], raw, dt, dyn)
    return jnp.concatenate([planned[:1], states], axis=0), raw


def plan_path(path: jnp.ndarray, speeds: jnp.ndarray, dt, dyn: kin.DynamicsParams):
    """`time_parameterise` then `replay`: (states (N, 4), raw controls (N-1, 2))."""
    return replay(time_parameterise(path, speeds, dt), dt, dyn)
