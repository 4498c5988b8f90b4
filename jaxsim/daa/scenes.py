"""Randomised three-lane straight-road scenes with the traffic DAA needs (a lead vehicle,
neighbours left and right), for DAA tests, the adversary search and CPU benchmarks when
no other scenario source is at hand. Layout as `Scenario` documents; lanes at y = +3.5
(left, index 0), 0 (ego, 1) and -3.5 (right, 2); drivable area |y| < 5.25 m."""

from __future__ import annotations

import numpy as np

from jaxsim.scenario import FIELD_SPECS, AgentType, Layout, Source, from_numpy

LANE_Y = (3.5, 0.0, -3.5)


def scene_arrays(
    rng: np.random.Generator,
    T: int = 81,
    A: int = 8,
    dt: float = 0.1,
    num_agents: int = 4,
    ego_speed: float | None = None,
    agents: list | None = None,
) -> dict:
    """One scene as numpy arrays: ego along +x at a constant 8-14 m/s (or `ego_speed`),
    then up to `num_agents` constant-speed vehicles: lead (ego lane, 15-40 m ahead), left
    and right neighbours (-15..+10 m), a second right-lane vehicle ahead (10-35 m), each
    within 2 m/s of the ego. `agents` [(lane, x0 m, speed m/s)] replaces the random ones."""
    L, P, S, H, W, res = 4, 48, 2, 24, 400, 1.0
    t = np.arange(T, dtype=np.float32) * dt
    v = rng.uniform(8.0, 14.0) if ego_speed is None else ego_speed
    ego = np.stack([v * t, np.zeros(T), np.zeros(T), np.full(T, v)], -1).astype(np.float32)
    traj = np.zeros((T, A, 4), np.float32)
    valid = np.zeros((T, A), bool)
    types = np.zeros(A, np.int32)
    if agents is None:
        specs = [
            (1, rng.uniform(15, 40)),
            (0, rng.uniform(-15, 10)),
            (2, rng.uniform(-15, 10)),
            (2, rng.uniform(10, 35)),
        ]
        agents = [(lane, x0, max(v + rng.uniform(-2.0, 2.0), 0.0)) for lane, x0 in specs[: min(num_agents, A)]]
    for k, (lane, x0, va) in enumerate(agents):
        traj[:, k] = np.stack([x0 + va * t, np.full(T, LANE_Y[lane]), np.zeros(T), np.full(T, va)], -1)
        valid[:, k] = True
        types[k] = AgentType.VEHICLE
    lane_points = np.zeros((L, P, 2), np.float32)
    for lane, y in enumerate(LANE_Y):
        lane_points[lane, :, 0] = np.linspace(-40.0, 300.0, P)
        lane_points[lane, :, 1] = y
    origin = np.array([-50.0, -11.5], np.float32)
    ys = origin[1] + np.arange(H) * res
    a = dict(
        ego_traj=ego, ego_valid=np.ones(T, bool), ego_size=np.array([4.8, 2.0], np.float32),
        ego_lane=np.ones(T, np.int32), agent_traj=traj, agent_valid=valid,
        agent_size=np.tile(np.array([4.5, 1.9], np.float32), (A, 1)), agent_type=types,
        lane_points=lane_points, lane_num_points=np.array([P, P, P, 0], np.int32),
        lane_width=np.full(L, 3.5, np.float32), lane_left=np.array([-1, 0, 1, -1], np.int32),
        lane_right=np.array([1, 2, -1, -1], np.int32), lane_succ=np.full((L, 3), -1, np.int32),
        sdf=np.tile((np.abs(ys) - 5.25)[:, None], (1, W)).astype(np.float32), sdf_origin=origin,
        sdf_res=np.float32(res), static_boxes=np.zeros((S, 5), np.float32), static_valid=np.zeros(S, bool),
        dt=np.float32(dt), origin=np.zeros(2, np.float32), source=np.int32(Source.PROCEDURAL),
        layout=np.int32(Layout.STRAIGHT), scenario_id=np.int32(0),
    )  # fmt: skip
    return a


def corner_case_bank(num: int, seed: int = 0, fixed: list | None = None, **kwargs):
    """A bank of `num` random scenes from `scene_arrays` (scenario_id = index), after the
    scenes given in `fixed` (a list of `scene_arrays` keyword dicts)."""
    rng = np.random.default_rng(seed)
    scenes = [scene_arrays(rng, **{**kwargs, **f}) for f in fixed or []]
    scenes += [scene_arrays(rng, **kwargs) for _ in range(num)]
    for k, s in enumerate(scenes):
        s["scenario_id"] = np.int32(k)
    return from_numpy({k: np.stack([s[k] for s in scenes]) for k in FIELD_SPECS}, batched=True)
