"""Hand-built scenarios with known answers, independent of the procedural generator."""

from __future__ import annotations

import numpy as np

from jaxsim.scenario import FIELD_SPECS, from_numpy


def straight_road(
    T: int = 41,
    A: int = 4,
    speed: float = 10.0,
    dt: float = 0.1,
    road_half_width: float = 5.25,
    agents: list[tuple[float, float, float, float]] | None = None,
    static_boxes: list[tuple[float, float, float, float, float]] | None = None,
) -> dict:
    """Ego drives along +x at y=0 with constant `speed` on a 3-lane road |y| < road_half_width.

    agents: (x0, y, yaw, speed) constant-velocity agents moving along their yaw.
    Returns numpy arrays for `from_numpy(..., batched=False)`.
    """
    L, P, S, H, W, res = 4, 16, 2, 40, 200, 1.0
    t = np.arange(T) * dt
    ego = np.stack([speed * t, np.zeros(T), np.zeros(T), np.full(T, speed)], -1).astype(np.float32)
    a = dict(
        ego_traj=ego,
        ego_valid=np.ones(T, bool),
        ego_size=np.array([4.8, 2.0], np.float32),
        ego_lane=np.ones(T, np.int32),
        agent_traj=np.zeros((T, A, 4), np.float32),
        agent_valid=np.zeros((T, A), bool),
        agent_size=np.tile(np.array([4.5, 1.9], np.float32), (A, 1)),
        agent_type=np.zeros(A, np.int32),
    )
    for k, (x0, y, yaw, v) in enumerate(agents or []):
        a["agent_traj"][:, k] = np.stack(
            [x0 + v * np.cos(yaw) * t, y + v * np.sin(yaw) * t, np.full(T, yaw), np.full(T, v)], -1
        )
        a["agent_valid"][:, k] = True
        a["agent_type"][k] = 1
    xs = np.linspace(-20.0, 180.0, P, dtype=np.float32)
    lane_points = np.zeros((L, P, 2), np.float32)
    for lane, y in enumerate([3.5, 0.0, -3.5]):
        lane_points[lane, :, 0] = xs
        lane_points[lane, :, 1] = y
    a.update(
        lane_points=lane_points,
        lane_num_points=np.array([P, P, P, 0], np.int32),
        lane_width=np.full(L, 3.5, np.float32),
        lane_left=np.array([-1, 0, 1, -1], np.int32),
        lane_right=np.array([1, 2, -1, -1], np.int32),
        lane_succ=np.full((L, 3), -1, np.int32),
    )
    origin = np.array([-30.0, -19.5], np.float32)
    ys = origin[1] + np.arange(H) * res
    sdf = np.tile((np.abs(ys) - road_half_width)[:, None], (1, W)).astype(np.float32)
    boxes = np.zeros((S, 5), np.float32)
    svalid = np.zeros(S, bool)
    for k, b in enumerate(static_boxes or []):
        boxes[k] = b
        svalid[k] = True
    a.update(
        sdf=sdf,
        sdf_origin=origin,
        sdf_res=np.float32(res),
        static_boxes=boxes,
        static_valid=svalid,
        dt=np.float32(dt),
        origin=np.zeros(2, np.float32),
        source=np.int32(0),
        layout=np.int32(0),
        scenario_id=np.int32(0),
    )
    assert set(a) == set(FIELD_SPECS)
    return a


def bank_of(*scenarios: dict):
    """Stack numpy scenario dicts into a bank."""
    return from_numpy({k: np.stack([s[k] for s in scenarios]) for k in FIELD_SPECS}, batched=True)
