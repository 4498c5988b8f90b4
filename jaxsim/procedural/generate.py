"""Top level of the procedural scenario source: seeds -> roads + traffic -> Scenario.

Per scenario (Python, ~1 ms): draw the layout, build the road, place the traffic,
rotate/shift the scene into a random world pose. Per chunk of scenarios (numpy,
vectorised): simulate traffic and the ego plan, drive the expert with the bicycle
model, compute agent poses, observation windows and safety filters, then each
scenario's SDF on a grid centred on the expert path (closed form for straight roads and
intersections, raster + distance transform for curves and merges).
"""

from __future__ import annotations

import math

import numpy as np

from jaxsim.procedural.config import GeneratorConfig
from jaxsim.procedural.ego import planned_path, track
from jaxsim.procedural.finalize import agent_poses, compact, observed, safety_filter, static_filter
from jaxsim.procedural.highway import build_highway
from jaxsim.procedural.intersection import build_intersection
from jaxsim.procedural.place_highway import place_highway
from jaxsim.procedural.place_intersection import place_intersection
from jaxsim.procedural.placement import pack
from jaxsim.procedural.rasterize import grid_origin, road_sdf
from jaxsim.procedural.roadmap import RoadMap
from jaxsim.procedural.seeding import Rand, check_split, scenario_seed
from jaxsim.procedural.traffic import simulate
from jaxsim.scenario import FIELD_SPECS, Layout, Scenario, Source, from_numpy

EGO_SIZE = np.array([4.8, 2.0])  # m, RAD-like car
CHUNK = 128  # scenarios simulated together (keeps the (N, M, M) arrays in cache)
ROAD_TABLES = (
    "route_xy",
    "route_yaw",
    "route_u0",
    "route_lane",
    "route_lane2",
    "route_watch2",
    "route_mask",
    "route_c",
    "route_stop",
    "route_red",
    "route_vlim",
)


def setup_scenario(seed: int, cfg: GeneratorConfig) -> tuple[RoadMap, dict]:
    """Road and initial traffic (AgentSpec) of scenario `seed`, in world coordinates."""
    rng = Rand(seed)
    layout = Layout(rng.weighted(cfg.layout_weights))
    ego_speed = rng.uniform(*cfg.ego_speed)
    if layout == Layout.INTERSECTION:
        road = build_intersection(rng, cfg.max_lanes, cfg.lane_points)
        ego, cands = place_intersection(rng, road, ego_speed, cfg.duration, cfg.traffic_density)
    else:
        road = build_highway(rng, layout, cfg.max_lanes, cfg.lane_points, ego_speed, cfg.duration)
        ego, cands = place_highway(rng, road, ego_speed, cfg.duration, cfg.traffic_density)
    spec = pack(road, ego, cands, cfg.max_agents, cfg.sensor_range, cfg.duration)
    # random world pose: logs are not aligned with the axes
    theta = rng.uniform(-math.pi, math.pi)
    shift = np.array([rng.uniform(-40.0, 40.0), rng.uniform(-40.0, 40.0)])
    road.transform(theta, shift)
    c, s = math.cos(theta), math.sin(theta)
    fx, fy = spec["free"][:, 0].copy(), spec["free"][:, 1].copy()
    spec["free"][:, 0], spec["free"][:, 1] = c * fx - s * fy + shift[0], s * fx + c * fy + shift[1]
    spec["free"][:, 2] += theta
    return road, spec


def simulate_chunk(roads: list[RoadMap], specs: list[dict], seeds: list[int], cfg: GeneratorConfig) -> dict:
    """Scenario arrays with a leading axis for the given set-ups (numpy, FIELD_SPECS dtypes)."""
    N, T, dt = len(roads), cfg.num_steps, cfg.dt
    n_ix = np.arange(N)
    tab = {k: np.stack([getattr(r, k) for r in roads]) for k in ROAD_TABLES}
    # only as many slots as the busiest scenario uses (the pair search is O(M^2));
    # empty slots never interact, so results do not depend on the chunk's other scenarios
    M = 1 + max(int(np.count_nonzero(s["mode"][1:])) for s in specs)
    spec = {k: np.stack([s[k][:M] for s in specs]) for k in specs[0]}
    sim = simulate(tab, spec, T, dt)

    r0 = spec["route"][:, 0]
    u0 = tab["route_u0"][n_ix, r0]
    path = planned_path(
        tab["route_xy"][n_ix, r0],
        tab["route_yaw"][n_ix, r0],
        spec["lc_dd"][:, 0],
        sim["lc_u0"][:, 0],
        sim["lc_len"][:, 0],
        u0,
    )
    ego = track(path, u0, sim["u"][:, :, 0], sim["v"][:, :, 0], dt)  # (T, N, 4)
    ego = ego.astype(np.float32).astype(np.float64)  # filters see exactly the stored log

    poses = agent_poses(tab, spec, sim, dt)[:, :, 1:]
    mode = spec["mode"][:, 1:]
    size = np.stack([spec["length"][:, 1:], spec["width"][:, 1:]], -1)
    valid = observed(poses, ego, sim["alive"][:, :, 1:], mode, cfg.sensor_range)
    valid &= safety_filter(poses, valid, size, ego, EGO_SIZE)[None]

    S = cfg.max_static
    boxes, svalid = np.zeros((N, S, 5)), np.zeros((N, S), bool)
    for n, road in enumerate(roads):
        spots = road.parking[:S]
        if spots:
            boxes[n, : len(spots)] = spots
            svalid[n, : len(spots)] = True
    if S:
        svalid = static_filter(boxes, svalid, ego, EGO_SIZE, poses, valid, size)
    boxes = np.where(svalid[..., None], boxes, 0.0)
    states, valid, size, types = compact(poses, valid, size, spec["type"][:, 1:], ego)
    pad = cfg.max_agents - states.shape[2]
    if pad:
        states = np.concatenate([states, np.zeros((T, N, pad, 4))], 2)
        valid = np.concatenate([valid, np.zeros((T, N, pad), bool)], 2)
        size = np.concatenate([size, np.zeros((N, pad, 2))], 1)
        types = np.concatenate([types, np.zeros((N, pad), types.dtype)], 1)

    res, H = cfg.sdf_res, cfg.sdf_size
    origins = np.stack([grid_origin(ego[:, n, :2], H, res) for n in range(N)])
    sdf = np.stack([road_sdf(road, origins[n], res, H) for n, road in enumerate(roads)])
    out = dict(
        ego_traj=ego.transpose(1, 0, 2),
        ego_valid=np.ones((N, T), bool),
        ego_size=np.tile(EGO_SIZE, (N, 1)),
        ego_lane=sim["lane"][:, :, 0].T,
        agent_traj=states.transpose(1, 0, 2, 3),
        agent_valid=valid.transpose(1, 0, 2),
        agent_size=size,
        agent_type=types,
        lane_points=np.stack([r.lane_points for r in roads]),
        lane_num_points=np.stack([r.lane_num_points for r in roads]),
        lane_width=np.stack([r.lane_width for r in roads]),
        lane_left=np.stack([r.lane_left for r in roads]),
        lane_right=np.stack([r.lane_right for r in roads]),
        lane_succ=np.stack([r.lane_succ for r in roads]),
        sdf=sdf,
        sdf_origin=origins,
        sdf_res=np.full(N, res),
        static_boxes=boxes,
        static_valid=svalid,
        dt=np.full(N, dt),
        origin=np.zeros((N, 2)),
        source=np.full(N, int(Source.PROCEDURAL)),
        layout=np.array([r.layout for r in roads]),
        scenario_id=np.array(seeds),
    )
    return {k: np.asarray(v).astype(FIELD_SPECS[k][0]) for k, v in out.items()}


def generate_scenario(seed: int, config: GeneratorConfig = GeneratorConfig()) -> Scenario:
    """One scenario from a 31-bit seed (e.g. `scenario_seed(split, seed, index)`)."""
    if not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**31:
        raise ValueError(f"seed must be an int in [0, 2**31), got {seed!r}")
    road, spec = setup_scenario(int(seed), config)
    arrays = simulate_chunk([road], [spec], [int(seed)], config)
    return from_numpy({k: v[0] for k, v in arrays.items()}, batched=False)


def generate_arrays(num: int, split: str = "train", seed: int = 0, config: GeneratorConfig = GeneratorConfig()) -> dict:
    """Numpy arrays of a bank (leading axis num); see `generate_bank`."""
    check_split(split)
    if not isinstance(num, (int, np.integer)) or num < 1:
        raise ValueError(f"num must be a positive int, got {num!r}")
    seeds = [scenario_seed(split, seed, i) for i in range(num)]
    setups = [setup_scenario(s, config) for s in seeds]
    # intersections need the per-route offset tables, highways share one frame (faster);
    # within a group, chunks of similar agent counts keep the (N, M, M) pair arrays small
    count = [int(np.count_nonzero(spec["mode"])) for _, spec in setups]
    is_inter = [setups[i][0].layout == Layout.INTERSECTION for i in range(num)]
    groups = [
        sorted((i for i in range(num) if is_inter[i] == inter), key=lambda i: count[i]) for inter in (False, True)
    ]
    out = None
    for group in groups:
        for start in range(0, len(group), CHUNK):
            idx = group[start : start + CHUNK]
            roads, specs = [setups[i][0] for i in idx], [setups[i][1] for i in idx]
            arrays = simulate_chunk(roads, specs, [seeds[i] for i in idx], config)
            if out is None:
                out = {k: np.zeros((num,) + v.shape[1:], v.dtype) for k, v in arrays.items()}
            for k, v in arrays.items():
                out[k][idx] = v
    return out


def generate_bank(
    num: int, split: str = "train", seed: int = 0, config: GeneratorConfig = GeneratorConfig()
) -> Scenario:
    """A ScenarioBank of `num` procedural scenarios of `split` ("train", "heldout" or "validation").

    Scenario i uses seed `scenario_seed(split, seed, i)` (stored as its scenario_id), so
    `generate_scenario(int(bank.scenario_id[i]), config)` rebuilds it; the held-out
    split never shares a scenario with the others (`jaxsim.procedural.seeding`).
    """
    return from_numpy(generate_arrays(num, split, seed, config), batched=True)
