"""Cut a resampled scene (SceneLog) into Scenario clips of T steps (numpy arrays).

Per clip: translate so the first ego position is the origin (stored in `origin`), make
the ego bicycle-consistent (ego.py), take the map's lanes (lanes.py) and the drivable
area SDF on a grid centred on the ego path, and fill the agent slots: parked vehicles
nearest the ego path become static boxes (up to S, those clear of the ego path), the
other tracks are ordered by closest approach to the ego and the A nearest kept. Steps
where an agent's box overlaps the ego's are marked unobserved (the real log had no
collision, so such overlaps are annotation / box-size artefacts) and counted.
"""

from __future__ import annotations

import numpy as np

from jaxsim.procedural.finalize import boxes_overlap, compact, static_filter
from jaxsim.procedural.rasterize import grid_origin, mask_to_sdf
from jaxsim.scenario import FIELD_SPECS, Layout, Source
from jaxsim.sources.nuscenes.config import ImportConfig
from jaxsim.sources.nuscenes.ego import bicycle_ego
from jaxsim.sources.nuscenes.lanes import lane_arrays
from jaxsim.sources.nuscenes.maps import MapData
from jaxsim.sources.nuscenes.raster import polygon_mask
from jaxsim.sources.nuscenes.timeline import SceneLog


def clip_starts(num_steps: int, cfg: ImportConfig) -> list[int]:
    """First grid steps of the clips of a scene of num_steps grid steps (the ego needs
    one pose past the clip for its last speed)."""
    return list(range(0, num_steps - cfg.num_steps, cfg.clip_stride))


def drivable_sdf(mp: MapData, origin: np.ndarray, grid0: np.ndarray, cfg: ImportConfig) -> np.ndarray:
    """SDF (H, W) of the map's drivable polygons (holes cut out) on the clip grid whose
    cell (0, 0) is centred at grid0 (local m)."""
    H, res = cfg.sdf_size, cfg.sdf_res
    lo, hi = grid0 + origin - res, grid0 + origin + H * res
    box = mp.drivable_bbox
    hit = (box[:, 0] <= hi[0]) & (box[:, 2] >= lo[0]) & (box[:, 1] <= hi[1]) & (box[:, 3] >= lo[1])
    polys = [
        (ext - origin, [h - origin for h in holes]) for ext, holes in (mp.drivable[k] for k in np.flatnonzero(hit))
    ]
    return mask_to_sdf(polygon_mask(polys, grid0, res, (H, H)), res)


def _agents(log: SceneLog, sl: slice, origin, ego: np.ndarray, cfg: ImportConfig):
    """Agent slot arrays and static boxes for the clip steps `sl` (ego (T, 4) local)."""
    T, A, S = cfg.num_steps, cfg.max_agents, cfg.max_static
    valid = log.agent_valid[sl]
    used = np.flatnonzero(valid.any(0))
    xy = log.agent_xy[sl][:, used] - origin
    states = np.concatenate([xy, log.agent_yaw[sl][:, used, None], log.agent_speed[sl][:, used, None]], -1)
    valid, size = valid[:, used], log.agent_size[used]
    types, parked = log.agent_type[used], log.parked[used]
    dist = np.where(valid, np.hypot(*(xy - ego[:, None, :2]).transpose(2, 0, 1)), np.inf).min(0)

    # parked vehicles nearest the ego path -> static boxes (first valid pose)
    boxes, svalid = np.zeros((S, 5)), np.zeros(S, bool)
    as_static = np.zeros(len(used), bool)
    order = [k for k in np.argsort(dist, kind="stable") if parked[k]][:S]
    for n, k in enumerate(order):
        t0 = int(np.argmax(valid[:, k]))
        boxes[n] = [*states[t0, k, :3], *size[k]]
        svalid[n] = True
        as_static[k] = True
    if S:
        svalid = static_filter(
            boxes[None],
            svalid[None],
            ego[:, None],
            np.asarray(cfg.ego_size),
            np.zeros((T, 1, 0, 4)),
            np.zeros((T, 1, 0), bool),
            np.zeros((1, 0, 2)),
        )[0]
    boxes = np.where(svalid[:, None], boxes, 0.0)

    keep = ~as_static
    states, valid, size, types = states[:, keep], valid[:, keep], size[keep], types[keep]
    ego_box = np.concatenate([ego[:, None, :3], np.broadcast_to(np.asarray(cfg.ego_size), (T, 1, 2))], -1)
    agent_box = np.concatenate([states[..., :3], np.broadcast_to(size, states.shape[:2] + (2,))], -1)
    hit = boxes_overlap(ego_box, agent_box) & valid
    valid = valid & ~hit
    st, va, sz, ty = compact(states[:, None], valid[:, None], size[None], types[None], ego[:, None])
    st, va, sz, ty = st[:, 0, :A], va[:, 0, :A], sz[0, :A], ty[0, :A]
    pad = A - st.shape[1]
    if pad > 0:
        st = np.concatenate([st, np.zeros((T, pad, 4))], 1)
        va = np.concatenate([va, np.zeros((T, pad), bool)], 1)
        sz = np.concatenate([sz, np.zeros((pad, 2))], 0)
        ty = np.concatenate([ty, np.zeros(pad, ty.dtype)], 0)
    stats = dict(
        agents=int(va.any(0).sum()),
        agents_dropped=int(max(0, valid.any(0).sum() - A)),
        static=int(svalid.sum()),
        overlap_steps=int(hit.sum()),
    )
    return dict(
        agent_traj=st, agent_valid=va, agent_size=sz, agent_type=ty, static_boxes=boxes, static_valid=svalid
    ), stats


def make_clip(log: SceneLog, start: int, mp: MapData, cfg: ImportConfig, scenario_id: int):
    """Scenario arrays (FIELD_SPECS dtypes, no N axis) of the clip starting at grid step
    `start`, and its stats (drift, agents, lanes, ...)."""
    T = cfg.num_steps
    pose = log.ego[start : start + T + 1].copy()
    origin = pose[0, :2].copy()
    pose[:, :2] -= origin
    ego, ego_stats = bicycle_ego(pose, cfg.dt)
    agents, agent_stats = _agents(log, slice(start, start + T), origin, ego.astype(float), cfg)

    grid0 = grid_origin(ego[:, :2].astype(float), cfg.sdf_size, cfg.sdf_res)
    sdf = drivable_sdf(mp, origin, grid0, cfg)
    window = np.concatenate([grid0, grid0 + (cfg.sdf_size - 1) * cfg.sdf_res])  # lanes are cropped to the grid
    lanes = lane_arrays(mp, origin, window, ego.astype(float), cfg.max_lanes, cfg.lane_points)
    span = ego[:, :2].max(0) - ego[:, :2].min(0)
    out = dict(
        ego_traj=ego,
        ego_valid=np.ones(T, bool),
        ego_size=np.asarray(cfg.ego_size),
        **agents,
        **lanes,
        sdf=sdf,
        sdf_origin=grid0,
        sdf_res=cfg.sdf_res,
        dt=cfg.dt,
        origin=origin,
        source=int(Source.NUSCENES),
        layout=int(Layout.UNKNOWN),
        scenario_id=scenario_id,
    )
    arrays = {k: np.asarray(out[k]).astype(FIELD_SPECS[k][0]) for k in FIELD_SPECS}
    stats = dict(
        scene=log.name,
        start_step=int(start),
        scenario_id=int(scenario_id),
        **ego_stats,
        **agent_stats,
        lanes=int((lanes["lane_num_points"] > 0).sum()),
        ego_lane_missing=int((lanes["ego_lane"] < 0).sum()),
        path_outside_grid=bool((span > cfg.extent - 2 * cfg.sdf_res).any()),
    )
    return arrays, stats
