"""Make a logged ego path bicycle-consistent, so the expert replays it exactly.

The interpolated log gives box-centre poses p_0..p_T (T+1 of them). Under the explicit
Euler step of `jaxsim.kinematics.step` the position at t+2 is fixed by the state at
t+1, so each step asks for the state at t+1 whose speed and heading carry the car from
where it will be at t+1 onto the logged p_{t+2} (the first state likewise aims at p_1).
`kinematics.inverse` turns that request into controls, clipped to DynamicsParams, and
`kinematics.step` integrates them. Without clipping this lands on every logged
position; a clipped step leaves an error that the next unclipped one removes, so noise
in the log cannot make the re-integrated path drift away. While slower than
HEADING_MIN_SPEED (or reversing) the heading is held: a car cannot turn in place, and
finite-difference headings of a nearly stopped car are localisation noise.

The stored log is `kinematics.rollout` of the recovered controls from the first state;
its distance to the interpolated log (the drift) is reported.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim import kinematics

HEADING_MIN_SPEED = 1.0  # m/s; below it, finite-difference headings are localisation noise
REVERSE_COS = 0.0  # motion more than 90 deg from the logged yaw is reversing


def _aim(xy, yaw_now, yaw_log, goal, dt):
    """Heading and speed that move from xy to goal in one step (heading held if slow)."""
    d = goal - xy
    dist = jnp.hypot(d[0], d[1])
    heading = jnp.arctan2(d[1], d[0])
    moving = (dist / dt > HEADING_MIN_SPEED) & (jnp.cos(heading - yaw_log) > REVERSE_COS)
    yaw = jnp.where(moving, heading, yaw_now)
    forward = jnp.maximum(d[0] * jnp.cos(yaw) + d[1] * jnp.sin(yaw), 0.0)
    return yaw, jnp.where(moving, dist, forward) / dt


@jax.jit
def _track(pose: jnp.ndarray, dt, params: kinematics.DynamicsParams):
    """Controls (T-1, 2) and states (T, 4) tracking poses (T+1, 3) (see module doc)."""
    yaw0, v0 = _aim(pose[0, :2], pose[0, 2], pose[0, 2], pose[1, :2], dt)
    s0 = jnp.stack([pose[0, 0], pose[0, 1], yaw0, jnp.minimum(v0, params.max_speed)])

    def body(state, xs):
        goal, yaw_log = xs
        nxt = state[:2] + state[3] * dt * jnp.stack([jnp.cos(state[2]), jnp.sin(state[2])])
        yaw, v = _aim(nxt, state[2], yaw_log, goal, dt)
        want = kinematics.inverse(state, jnp.concatenate([nxt, jnp.stack([yaw, v])]), dt, params)
        u = kinematics.clip_controls(want, params)
        return kinematics.step(state, u, dt, params), (u, jnp.any(jnp.abs(u - want) > 1e-6))

    _, (controls, clipped) = jax.lax.scan(body, s0, (pose[2:, :2], pose[1:-1, 2]))
    states = kinematics.rollout(s0, controls, dt, params)
    return controls, jnp.concatenate([s0[None], states]), clipped


def bicycle_ego(pose: np.ndarray, dt: float, params: kinematics.DynamicsParams | None = None):
    """Bicycle-consistent ego log (T, 4) float32 from poses (T+1, 3) [x, y, yaw] (local
    metres), and stats: drift_max / drift_final m (stored vs interpolated positions),
    yaw_dev_max rad (stored vs logged yaw), clipped_steps (controls that hit a limit)."""
    params = params or kinematics.DynamicsParams()
    _, traj, clipped = _track(jnp.asarray(pose, jnp.float32), jnp.float32(dt), params)
    traj = np.asarray(traj, np.float32)
    err = np.hypot(*(traj[:, :2] - pose[:-1, :2]).T)
    dyaw = np.abs((traj[:, 2] - pose[:-1, 2] + np.pi) % (2 * np.pi) - np.pi)
    stats = dict(
        drift_max=float(err.max()),
        drift_final=float(err[-1]),
        yaw_dev_max=float(dyaw.max()),
        clipped_steps=int(np.asarray(clipped).sum()),
    )
    return traj, stats
