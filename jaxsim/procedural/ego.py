"""The expert ego: pure pursuit + speed tracking of its planned path, integrated with the
exact bicycle model of `jaxsim.kinematics.step`.

The traffic model plans the ego like any car (IDM behind leaders, lane change, red
lights). Here a closed-loop controller drives that plan: pure pursuit on the planned
path (route plus lane-change offset) and feedforward + PD on the planned speed and
position. States are integrated with kinematics.step's explicit Euler in the same
order (pose with the old speed, then yaw, then the clipped speed), so
`kinematics.expert_controls(ego_traj)` recovers controls that replay the log.
Vectorised over N scenarios; float64 inside, rounded to float32 by the caller.
"""

from __future__ import annotations

import numpy as np

from jaxsim.kinematics import DynamicsParams
from jaxsim.procedural.curves import left_normal, smoothstep5
from jaxsim.procedural.roadmap import ROUTE_DU

_P = DynamicsParams()
WHEELBASE = float(_P.wheelbase)
MAX_SPEED = float(_P.max_speed)
ACCEL_RANGE = (-7.5, 3.5)  # inside DynamicsParams' [-8, 4], so replayed controls need no clipping
MAX_STEER = 0.8  # rad, inside max_steer 0.855
K_SPEED, K_POS = 1.5, 0.55  # 1/s, 1/s^2: critically damped tracking of the plan


def wrap(a):
    """Same as jaxsim.geometry.wrap_angle: radians to [-pi, pi)."""
    return (a + np.pi) % (2.0 * np.pi) - np.pi


def planned_path(route_xy, route_yaw, lc_dd, lc_u0, lc_len, u0) -> np.ndarray:
    """Ego path (N, K, 2): its route samples shifted sideways by the lane-change profile.

    route_xy (N, K, 2), route_yaw (N, K): the ego's route; lc_dd, lc_u0, lc_len, u0: (N,).
    """
    u = u0[:, None] + ROUTE_DU * np.arange(route_xy.shape[1])[None]
    started = np.isfinite(lc_u0)[:, None]
    x = (u - np.where(started, lc_u0[:, None], 0.0)) / lc_len[:, None]
    d = np.where(started, lc_dd[:, None] * smoothstep5(x), 0.0)
    return route_xy + d[..., None] * left_normal(route_yaw)


def _lerp(path, n_ix, k):
    i = np.clip(np.floor(k).astype(np.int64), 0, path.shape[1] - 2)
    f = np.clip(k - i, 0.0, 1.0)[:, None]
    return path[n_ix, i] * (1 - f) + path[n_ix, i + 1] * f, i


def track(path: np.ndarray, u0: np.ndarray, plan_u: np.ndarray, plan_v: np.ndarray, dt: float) -> np.ndarray:
    """Drive the plan. path (N, K, 2) sampled every ROUTE_DU m from parameter u0 (N,);
    plan_u, plan_v: (T, N) planned path parameter and speed. Returns states (T, N, 4)."""
    T, N = plan_u.shape
    n_ix = np.arange(N)
    k0 = (plan_u[0] - u0) / ROUTE_DU
    p, seg = _lerp(path, n_ix, k0)
    d = path[n_ix, seg + 1] - path[n_ix, seg]
    x, y, yaw, v = p[:, 0].copy(), p[:, 1].copy(), np.arctan2(d[:, 1], d[:, 0]), plan_v[0].copy()
    states = np.zeros((T, N, 4))
    offsets = np.arange(-1, 3)
    for t in range(T):
        states[t] = np.stack([x, y, yaw, v], -1)
        if t == T - 1:
            break
        # project onto the path near the previous segment (it moves < 2 segments a step)
        cand = np.clip(seg[:, None] + offsets, 0, path.shape[1] - 2)
        a, b = path[n_ix[:, None], cand], path[n_ix[:, None], cand + 1]
        ab = b - a
        q = np.stack([x, y], -1)[:, None] - a
        f = np.clip(np.sum(q * ab, -1) / np.maximum(np.sum(ab * ab, -1), 1e-9), 0.0, 1.0)
        dist2 = np.sum((q - f[..., None] * ab) ** 2, -1)
        best = np.argmin(dist2, axis=1)
        seg = cand[n_ix, best]
        sigma = u0 + (seg + f[n_ix, best]) * ROUTE_DU
        # pure pursuit on a point Ld ahead along the path
        look = np.clip(0.6 * v + 3.0, 4.0, 15.0)
        target, _ = _lerp(path, n_ix, (sigma + look - u0) / ROUTE_DU)
        dx, dy = target[:, 0] - x, target[:, 1] - y
        c, s = np.cos(yaw), np.sin(yaw)
        lx, ly = c * dx + s * dy, -s * dx + c * dy
        steer = np.clip(np.arctan(WHEELBASE * 2.0 * ly / np.maximum(lx * lx + ly * ly, 1e-6)), -MAX_STEER, MAX_STEER)
        accel = (plan_v[t + 1] - plan_v[t]) / dt + K_SPEED * (plan_v[t] - v) + K_POS * (plan_u[t] - sigma)
        accel = np.clip(accel, *ACCEL_RANGE)
        # jaxsim.kinematics.step, same order
        x = x + v * np.cos(yaw) * dt
        y = y + v * np.sin(yaw) * dt
        yaw = wrap(yaw + v / WHEELBASE * np.tan(steer) * dt)
        v = np.clip(v + accel * dt, 0.0, MAX_SPEED)
    return states
