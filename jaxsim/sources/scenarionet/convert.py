"""One validated ScenarioNet scenario description -> the nuScenes importer's SceneLog and
MapData, so clips are cut by the same code (`jaxsim.sources.nuscenes.clips.make_clip`).

Ego (the SDC track): the longest run of valid steps. Real logs are noisy (nuScenes: the
CAN-bus pose stream has timing jitter, single-step speed spikes of a few m/s), so the
positions are smoothed with a cubic Savitzky-Golay filter of EGO_SMOOTH_WINDOW steps
(exact for cubic motion; on the six real nuScenes scenes 15 steps halved the mean
step-to-step jump of the recovered acceleration against 9 steps, 0.48 -> 0.28 m/s^2,
the report gives the largest shift of a smoothed position, smooth_dev_max_m, and its
cross-track part, smooth_cross_max_m: on those scenes up to 1.3 m along the track, where
a timing-jitter spike (one step at 19 m/s among 9 m/s) is spread out, and 1.3 cm across
it) before the bicycle inverse (`nuscenes.ego.bicycle_ego`). Below
`nuscenes.ego.HEADING_MIN_SPEED` (1 m/s; Waymax zeroes steering below 0.6 m/s) that
inverse holds the heading, so the recovered steer is held at zero instead of following
standstill yaw noise. Positions are moved to the box centre: nuScenes conversions store
the ego_pose frame (rear axle), so `ImportConfig.ego_center_offset` applies for dataset
'nuscenes'; other datasets (Waymo, nuPlan, AV2) already store box centres (offset 0).

Agents: VEHICLE, PEDESTRIAN, CYCLIST tracks (static objects such as cones and barriers
are not agents, as in the nuScenes importer). A vehicle that never moves more than
PARKED_MAX_MOTION m is "parked" (ScenarioNet keeps no parked attribute) and may become a
static box. Boxes from the median logged length/width.

Map: lanes are the LANE_* features (bike lanes excluded), yaw from the polyline; width
from the lane polygon's area / length when the file has one (else `width`, else 3.5 m);
the lane graph from `exit_lanes` and `left_neighbor`/`right_neighbor` when the file has
them (Waymo, nuPlan conversions), else from geometry (`nuscenes.lanes`; nuScenes
conversions store no neighbours and no connectivity).
The drivable area is the union of lane polygons plus, for lanes without one (nuScenes
lane connectors, Waymo lanes), a band of the lane's width + BAND_MARGIN per side around
its centreline: junction surfaces are wider than one connector's lane (nuScenes'
drivable_area covers the whole junction; without the margin the expert's corner left
the bands by 0.4-0.7 m in two turning clips of scene-0916).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import savgol_filter

from jaxsim.procedural.curves import arc_lengths, band_polygon
from jaxsim.scenario import AgentType
from jaxsim.sources.nuscenes.maps import DEFAULT_LANE_WIDTH, LANE_WIDTH_RANGE, MapData, _bbox, _shoelace
from jaxsim.sources.nuscenes.timeline import AGENT_COLUMNS, SceneLog

EGO_SMOOTH_WINDOW = 15  # steps (1.5 s at 10 Hz) of the cubic Savitzky-Golay filter on ego x, y
PARKED_MAX_MOTION = 0.5  # m; a vehicle whose logged positions stay within this is parked
AGENT_TYPES = {"VEHICLE": AgentType.VEHICLE, "PEDESTRIAN": AgentType.PEDESTRIAN, "CYCLIST": AgentType.CYCLIST}
LANE_TYPES = ("LANE_SURFACE_STREET", "LANE_FREEWAY", "LANE_SURFACE_UNSTRUCTURE", "LANE_UNKNOWN")
MIN_LANE_LENGTH = 1.0  # m
BAND_MARGIN = 1.0  # m per side added to polygon-less lanes' bands on the drivable area


def _valid(st) -> np.ndarray:
    return np.asarray(st["valid"], float).reshape(-1) > 0


def longest_run(valid: np.ndarray) -> tuple[int, int]:
    """[start, stop) of the longest run of True (0, 0 if none)."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], valid.astype(int), [0]])))
    runs = list(zip(edges[::2], edges[1::2]))
    if not runs:
        return 0, 0
    return max(runs, key=lambda r: r[1] - r[0])


def ego_poses(st, run: tuple[int, int], offset: float, smooth: bool = True) -> np.ndarray:
    """(K, 3) smoothed box-centre [x, y, yaw] of the SDC over its valid run."""
    a, b = run
    xy = np.asarray(st["position"], float)[a:b, :2]
    yaw = np.asarray(st["heading"], float).reshape(-1)[a:b]
    if smooth and len(xy) >= EGO_SMOOTH_WINDOW:
        xy = savgol_filter(xy, EGO_SMOOTH_WINDOW, 3, axis=0, mode="interp")
    xy = xy + offset * np.stack([np.cos(yaw), np.sin(yaw)], -1)
    return np.concatenate([xy, ((yaw + np.pi) % (2 * np.pi) - np.pi)[:, None]], -1)


def _size(st, valid, key, default):
    if key not in st:
        return default
    v = np.asarray(st[key], float).reshape(-1)[valid]
    v = v[np.isfinite(v) & (v > 0)]
    return float(np.median(v)) if len(v) else default


def scene_log(sd: dict, info: dict, dt: float, offset: float) -> tuple[SceneLog, dict]:
    """SceneLog on the ego's valid run and stats (agent counts by type, dropped tracks)."""
    tracks, sdc = sd["tracks"], info["sdc_id"]
    run = longest_run(_valid(tracks[sdc]["state"]))
    ego = ego_poses(tracks[sdc]["state"], run, offset)
    raw = ego_poses(tracks[sdc]["state"], run, offset, smooth=False)
    d = ego[:, :2] - raw[:, :2]
    cross = float(np.abs(-d[:, 0] * np.sin(raw[:, 2]) + d[:, 1] * np.cos(raw[:, 2])).max())
    sl = slice(*run)
    cols = {k: [] for k in AGENT_COLUMNS}
    dropped = {}
    for tid, tr in tracks.items():
        if tid == sdc:
            continue
        kind = AGENT_TYPES.get(str(tr["type"]))
        if kind is None:
            dropped[str(tr["type"])] = dropped.get(str(tr["type"]), 0) + 1
            continue
        st = tr["state"]
        pos = np.asarray(st["position"], float)[sl, :2]
        yaw = np.asarray(st["heading"], float).reshape(-1)[sl]
        valid = _valid(st)[sl] & np.isfinite(pos).all(1) & np.isfinite(yaw)
        if not valid.any():
            continue
        if "velocity" in st:
            speed = np.hypot(*np.asarray(st["velocity"], float)[sl, :2].T)
        else:
            speed = np.zeros(len(pos))
        speed = np.where(np.isfinite(speed) & valid, speed, 0.0)
        pos, yaw = np.where(valid[:, None], pos, 0.0), np.where(valid, (yaw + np.pi) % (2 * np.pi) - np.pi, 0.0)
        full_valid = _valid(st)
        length = _size(st, full_valid, "length", 4.5 if kind == AgentType.VEHICLE else 0.8)
        width = _size(st, full_valid, "width", 1.9 if kind == AgentType.VEHICLE else 0.8)
        vxy = pos[valid]
        parked = kind == AgentType.VEHICLE and float(np.ptp(vxy, axis=0).max()) <= PARKED_MAX_MOTION
        for key, val in zip(cols, (pos, yaw, speed, valid, (length, width), int(kind), parked, str(tid))):
            cols[key].append(val)
    log = SceneLog.from_columns(
        cols,
        ego,
        name=info["name"],
        token=str(sd["metadata"].get("scenario_token", info["name"])),
        location=info["location"],
        dt=dt,
    )
    return log, dict(
        ego_steps=int(run[1] - run[0]),
        ego_first_step=int(run[0]),
        smooth_dev_max_m=float(np.hypot(*d.T).max()),
        smooth_cross_max_m=cross,
        tracks=len(cols["instance"]),
        parked=int(np.sum(cols["parked"])),
        not_agents=dropped,
    )


def _lane_pose(polyline: np.ndarray) -> np.ndarray | None:
    xy = np.asarray(polyline, float)[:, :2]
    xy = xy[np.isfinite(xy).all(1)]
    if len(xy) < 2:
        return None
    keep = np.concatenate([[True], np.hypot(*np.diff(xy, axis=0).T) > 1e-3])
    xy = xy[keep]
    if len(xy) < 2 or arc_lengths(xy)[-1] < MIN_LANE_LENGTH:
        return None
    d = np.diff(xy, axis=0)
    yaw = np.arctan2(d[:, 1], d[:, 0])
    return np.concatenate([xy, np.append(yaw, yaw[-1])[:, None]], -1)


def map_data(sd: dict, info: dict) -> MapData:
    """MapData (lanes with graph links, drivable polygons) of the scene's map features."""
    lanes, drivable, skipped = [], [], 0
    for fid, feat in sd["map_features"].items():
        if str(feat.get("type", "")) not in LANE_TYPES:
            continue
        pose = _lane_pose(feat["polyline"]) if len(feat.get("polyline", ())) else None
        if pose is None:
            skipped += 1
            continue
        length = arc_lengths(pose[:, :2])[-1]
        polygon = np.asarray(feat["polygon"], float)[:, :2] if len(feat.get("polygon", ())) >= 3 else None
        if polygon is not None and not np.isfinite(polygon).all():
            polygon = None
        if polygon is not None:
            width = float(np.clip(_shoelace(polygon) / length, *LANE_WIDTH_RANGE))
        elif "width" in feat and np.size(feat["width"]):
            w = np.asarray(feat["width"], float).reshape(-1)
            w = w[np.isfinite(w) & (w > 0)]
            width = float(np.clip(2 * np.median(w) if len(w) else DEFAULT_LANE_WIDTH, *LANE_WIDTH_RANGE))
        else:
            width = DEFAULT_LANE_WIDTH
        exits = feat.get("exit_lanes")
        lanes.append(
            dict(
                token=str(fid),
                kind="lane" if polygon is not None else "lane_connector",
                pose=pose,
                width=width,
                outgoing=[str(t) for t in (exits if exits is not None else [])],
                has_connectivity=exits is not None,
            )
        )
        if polygon is not None:
            drivable.append((polygon, []))
        else:
            drivable.append(
                (band_polygon(pose[:, :2], pose[:, 2], -0.5 * width - BAND_MARGIN, 0.5 * width + BAND_MARGIN), [])
            )
    return MapData(
        location=info["location"],
        version="scenarionet",
        lanes=lanes,
        lane_bbox=_bbox([ln["pose"][:, :2] for ln in lanes]),
        drivable=drivable,
        drivable_bbox=_bbox([ext for ext, _ in drivable]),
        skipped_lanes=skipped,
    )


def _ids(items) -> list[str]:
    """Feature ids of a neighbour list: plain ids (nuPlan, MetaDrive) or dicts with
    `feature_id`/`id` (Waymo conversions)."""
    out = []
    for it in items if items is not None else []:
        if isinstance(it, dict):
            it = it.get("feature_id", it.get("id"))
        if it is not None:
            out.append(str(it))
    return out


def neighbour_table(sd: dict) -> dict | None:
    """{lane id: (left ids, right ids)} from `left_neighbor`/`right_neighbor`, or None when
    no lane of the file lists any neighbour (nuScenes conversions store empty lists)."""
    table = {}
    for fid, feat in sd["map_features"].items():
        if str(feat.get("type", "")) in LANE_TYPES:
            table[str(fid)] = (_ids(feat.get("left_neighbor")), _ids(feat.get("right_neighbor")))
    if not any(left or right for left, right in table.values()):
        return None
    return table


def file_neighbours(tokens: list[str], lines: list[np.ndarray], table: dict, L: int):
    """lane_left, lane_right (L,) int32 of the clip's lanes `tokens` (centrelines `lines`)
    from the file's neighbour lists: of the listed lanes present in the clip, the one
    nearest the lane's centreline (lists may hold every lane to that side); links are
    made mutual (j left of i => i right of j)."""
    index = {t: k for k, t in enumerate(tokens)}
    left, right = np.full(L, -1, np.int32), np.full(L, -1, np.int32)

    def nearest(k, ids):
        cand = [index[t] for t in ids if t in index and index[t] != k]
        if not cand:
            return -1
        mid = lines[k][len(lines[k]) // 2]
        return min(cand, key=lambda j: float(np.min(np.hypot(*(lines[j] - mid).T))))

    for k, tok in enumerate(tokens):
        ids_l, ids_r = table.get(tok, ([], []))
        left[k], right[k] = nearest(k, ids_l), nearest(k, ids_r)
    for k in range(len(tokens)):
        if left[k] >= 0 and right[left[k]] < 0:
            right[left[k]] = k
        if right[k] >= 0 and left[right[k]] < 0:
            left[right[k]] = k
    return left, right
