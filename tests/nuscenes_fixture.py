"""A tiny synthetic nuScenes dataset in the exact table format, for importer tests.

One log (location boston-seaport) with one scene of NUM_KEYFRAMES keyframes (0.5 s
apart) and LIDAR_TOP sweeps at 20 Hz (plus CAM_FRONT records at 12 Hz, which the
importer must ignore for ego poses). The map (`maps/expansion/boston-seaport.json`,
version 1.3 layout) is a straight two-lane road (each lane split in two, linked through
`connectivity`) with `arcline_path_3` centrelines, lane polygons, and a drivable-area
polygon with a hole (a traffic island beside the road). Everything lives in a road
frame (s along, d to the left) placed at ROAD_ORIGIN with heading ROAD_YAW.

Ground truth (the `Truth` returned by `build`): the ego's rear-axle path (accelerating,
with a lane change to the left lane between 8 and 12 s) and the agents' analytic poses.
Agents: car A ahead in the right lane, car B overtaking in the left lane (annotations
missing for 2 s in the middle: an occlusion), car C parked beside the road (attribute
vehicle.parked), a pedestrian, a cyclist and a traffic cone (not an agent).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os

import numpy as np
from PIL import Image

ROAD_ORIGIN = np.array([612.5, 1583.0])  # m, map frame
ROAD_YAW = 0.5  # rad
LANE_W = 3.5
NUM_KEYFRAMES = 40
T0_US = 1533151603547590  # realistic nuScenes timestamp (microseconds)
LIDAR_HZ = 20
S_RANGE = (-60.0, 340.0)  # road extent along s
S_SPLIT = 140.0  # lanes are split here (lane 1 -> lane 2)
ROAD_D = (-LANE_W / 2 - 1.0, 12.0)  # drivable band: right shoulder 1 m, left up to d = 12
ISLAND = ((50.0, 80.0), (7.5, 11.0))  # hole in the drivable area: s range, d range
OCCLUDED_B = (20, 24)  # keyframes [a, b) without an annotation of car B
EGO_REAR_TO_CENTER = 1.4


def to_world(s, d):
    c, si = math.cos(ROAD_YAW), math.sin(ROAD_YAW)
    s, d = np.asarray(s, float), np.asarray(d, float)
    return np.stack([ROAD_ORIGIN[0] + c * s - si * d, ROAD_ORIGIN[1] + si * s + c * d], -1)


def ego_sd(t):
    """Rear-axle road coordinates (s, d) and their time derivatives at times t (s)."""
    t = np.asarray(t, float)
    s, ds = 6.0 * t + 0.15 * t * t, 6.0 + 0.3 * t
    u = np.clip((t - 8.0) / 4.0, 0.0, 1.0)
    d = 0.5 * LANE_W * (1 - np.cos(np.pi * u))
    dd = np.where((t > 8.0) & (t < 12.0), 0.5 * LANE_W * np.pi / 4.0 * np.sin(np.pi * u), 0.0)
    return s, d, ds, dd


def ego_rear_pose(t):
    """Rear-axle [x, y, yaw] (n, 3) in the map frame (yaw = direction of motion)."""
    s, d, ds, dd = ego_sd(t)
    return np.concatenate([to_world(s, d), (ROAD_YAW + np.arctan2(dd, ds))[..., None]], -1)


def ego_center_pose(t):
    p = ego_rear_pose(t)
    return np.concatenate(
        [p[..., :2] + EGO_REAR_TO_CENTER * np.stack([np.cos(p[..., 2]), np.sin(p[..., 2])], -1), p[..., 2:]], -1
    )


# name, category, (s0, d0, vs, vd), size [w, l, h], parked
AGENTS = (
    ("car_a", "vehicle.car", (30.0, 0.0, 9.0, 0.0), (1.9, 4.6, 1.6), False),
    ("car_b", "vehicle.car", (-20.0, LANE_W, 12.0, 0.0), (2.0, 4.9, 1.7), False),
    ("car_c", "vehicle.car", (120.0, 7.0, 0.0, 0.0), (1.9, 4.5, 1.5), True),
    ("ped", "human.pedestrian.adult", (10.0, 11.5, 1.2, 0.0), (0.7, 0.7, 1.8), False),
    ("bike", "vehicle.bicycle", (0.0, -2.2, 4.0, 0.0), (0.6, 1.8, 1.5), False),
    ("cone", "movable_object.trafficcone", (60.0, -2.5, 0.0, 0.0), (0.4, 0.4, 0.8), False),
)


def agent_pose(name: str, t):
    """Box centre [x, y, yaw] (n, 3) of agent `name` at times t (s)."""
    spec = {a[0]: a for a in AGENTS}[name]
    s0, d0, vs, vd = spec[2]
    t = np.asarray(t, float)
    xy = to_world(s0 + vs * t, d0 + vd * t)
    yaw = ROAD_YAW + (math.atan2(vd, vs) if (vs or vd) else 0.0)
    return np.concatenate([xy, np.full(t.shape + (1,), yaw)], -1)


def quat(yaw: float) -> list:
    return [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]


@dataclasses.dataclass
class Truth:
    dataroot: str
    version: str
    keyframe_times: np.ndarray  # s from the first keyframe


class _Tokens:
    def __init__(self):
        self.n = 0

    def __call__(self, kind: str) -> str:
        self.n += 1
        return f"{kind}{self.n:027x}"[-32:]  # 32 hex-like characters, like nuScenes tokens


def _map_json(tok) -> dict:
    nodes, polygons = [], []

    def polygon(points, holes=()):
        def chain(pts):
            out = []
            for p in pts:
                nodes.append({"token": tok("node"), "x": float(p[0]), "y": float(p[1])})
                out.append(nodes[-1]["token"])
            return out

        rec = {
            "token": tok("poly"),
            "exterior_node_tokens": chain(points),
            "holes": [{"node_tokens": chain(h)} for h in holes],
        }
        polygons.append(rec)
        return rec["token"]

    def divider(s0, s1, d):
        pts = to_world(np.linspace(s0, s1, 5), np.full(5, d))
        out = []
        for p in pts:
            nodes.append({"token": tok("node"), "x": float(p[0]), "y": float(p[1])})
            out.append({"node_token": nodes[-1]["token"], "segment_type": "DOUBLE_DASHED_WHITE"})
        return out

    def rect(s0, s1, d0, d1):
        return to_world([s0, s1, s1, s0], [d0, d0, d1, d1])

    island = rect(ISLAND[0][0], ISLAND[0][1], ISLAND[1][0], ISLAND[1][1])[::-1]
    drivable = polygon(rect(S_RANGE[0], S_RANGE[1], ROAD_D[0], ROAD_D[1]), holes=[island])
    lanes, arclines, connectivity = [], {}, {}
    for d, _name in ((0.0, "right"), (LANE_W, "left")):
        toks = []
        for s0, s1 in ((S_RANGE[0], S_SPLIT), (S_SPLIT, S_RANGE[1])):
            token = tok("lane")
            toks.append(token)
            lanes.append(
                {
                    "token": token,
                    "polygon_token": polygon(rect(s0, s1, d - LANE_W / 2, d + LANE_W / 2)),
                    "lane_type": "CAR",
                    "from_edge_line_token": None,
                    "to_edge_line_token": None,
                    "left_lane_divider_segments": divider(s0, s1, d + LANE_W / 2),
                    "right_lane_divider_segments": divider(s0, s1, d - LANE_W / 2),
                }
            )
            start = to_world(s0, d)
            # nearly straight, like real map records: a short left arc, a line, a short right arc
            length = s1 - s0
            arclines[token] = [
                {
                    "start_pose": [float(start[0]), float(start[1]), ROAD_YAW],
                    "end_pose": [*map(float, to_world(s1, d)), ROAD_YAW],
                    "shape": "LSR",
                    "radius": 999.999,
                    "segment_length": [0.25, length - 0.5, 0.25],
                }
            ]
        connectivity[toks[0]] = {"incoming": [], "outgoing": [toks[1]]}
        connectivity[toks[1]] = {"incoming": [toks[0]], "outgoing": []}
    return {
        "version": "1.3",
        "canvas_edge": [2979.5, 2118.1],
        "node": nodes,
        "line": [],
        "polygon": polygons,
        "drivable_area": [{"token": tok("da"), "polygon_tokens": [drivable]}],
        "road_segment": [],
        "road_block": [],
        "lane": lanes,
        "ped_crossing": [],
        "walkway": [],
        "stop_line": [],
        "carpark_area": [],
        "road_divider": [],
        "lane_divider": [],
        "traffic_light": [],
        "arcline_path_3": arclines,
        "connectivity": connectivity,
        "lane_connector": [],
    }


def build(root: str, version: str = "v1.0-mini", num_keyframes: int = NUM_KEYFRAMES) -> Truth:
    """Write the dataset under `root` (tables in root/version, map in root/maps/expansion)."""
    tok = _Tokens()
    rng = np.random.default_rng(0)
    location = "boston-seaport"
    log = {
        "token": tok("log"),
        "logfile": "n008-2018-08-01-15-16-36-0400",
        "vehicle": "n008",
        "date_captured": "2018-08-01",
        "location": location,
    }
    maps = [
        {
            "token": tok("map"),
            "log_tokens": [log["token"]],
            "category": "semantic_prior",
            "filename": "maps/53992ee3023e5494b90c316c183be829.png",
        }
    ]
    sensors = [
        {"token": tok("sensor"), "channel": ch, "modality": mod}
        for ch, mod in (("LIDAR_TOP", "lidar"), ("CAM_FRONT", "camera"))
    ]
    calib = [
        {
            "token": tok("calib"),
            "sensor_token": s["token"],
            "translation": [0.9, 0.0, 1.8],
            "rotation": [1.0, 0.0, 0.0, 0.0],
            "camera_intrinsic": [],
        }
        for s in sensors
    ]
    categories = {c: {"token": tok("cat"), "name": c, "description": ""} for c in {a[1] for a in AGENTS}}
    attributes = {
        n: {"token": tok("attr"), "name": n, "description": ""}
        for n in ("vehicle.moving", "vehicle.parked", "pedestrian.moving", "cycle.with_rider")
    }
    scene = {
        "token": tok("scene"),
        "log_token": log["token"],
        "nbr_samples": num_keyframes,
        "name": "scene-0061",
        "description": "synthetic: straight road, lane change",
    }

    # lidar sweeps at 20 Hz with 0.3 ms jitter; every 10th is a keyframe
    n_sweeps = 10 * (num_keyframes - 1) + 1 + 5  # a few sweeps after the last keyframe
    t_lidar = np.arange(n_sweeps) / LIDAR_HZ + rng.uniform(-3e-4, 3e-4, n_sweeps)
    t_lidar[0] = 0.0
    t_kf = t_lidar[: 10 * num_keyframes : 10]
    us = lambda t: int(T0_US + round(t * 1e6))  # noqa: E731
    samples = [
        {"token": tok("sample"), "timestamp": us(t), "prev": "", "next": "", "scene_token": scene["token"]}
        for t in t_kf
    ]
    for a, b in zip(samples[:-1], samples[1:]):
        a["next"], b["prev"] = b["token"], a["token"]
    scene["first_sample_token"], scene["last_sample_token"] = samples[0]["token"], samples[-1]["token"]

    ego_poses, sample_data = [], []
    t_cam = np.arange(0.0, t_lidar[-1], 1.0 / 12.0) + 0.013
    for ch, times, cal in (("LIDAR_TOP", t_lidar, calib[0]), ("CAM_FRONT", t_cam, calib[1])):
        prev = None
        for k, t in enumerate(times):
            kf = np.argmin(np.abs(t_kf - t))
            is_key = ch == "LIDAR_TOP" and k % 10 == 0 and k // 10 < num_keyframes
            owner = min(int(np.searchsorted(t_kf, t - 1e-9)), num_keyframes - 1)  # next keyframe
            pose = ego_rear_pose(np.array([t]))[0]
            ep = {
                "token": tok("ego"),
                "timestamp": us(t),
                "rotation": quat(float(pose[2])),
                "translation": [float(pose[0]), float(pose[1]), 0.0],
            }
            ego_poses.append(ep)
            folder = "samples" if is_key else "sweeps"
            ext = "pcd.bin" if ch == "LIDAR_TOP" else "jpg"
            rec = {
                "token": tok("sd"),
                "sample_token": samples[kf if is_key else owner]["token"],
                "ego_pose_token": ep["token"],
                "calibrated_sensor_token": cal["token"],
                "timestamp": us(t),
                "fileformat": ext.split(".")[0],
                "is_key_frame": bool(is_key),
                "height": 0,
                "width": 0,
                "filename": f"{folder}/{ch}/n008-2018-08-01-15-16-36-0400__{ch}__{us(t)}.{ext}",
                "prev": prev["token"] if prev else "",
                "next": "",
            }
            if prev:
                prev["next"] = rec["token"]
            sample_data.append(rec)
            prev = rec

    instances, annotations = [], []
    for name, cat, _, size, parked in AGENTS:
        inst = {
            "token": tok("inst"),
            "category_token": categories[cat]["token"],
            "nbr_annotations": 0,
            "first_annotation_token": "",
            "last_annotation_token": "",
        }
        chain = []
        for k, (s, t) in enumerate(zip(samples, t_kf)):
            if name == "car_b" and OCCLUDED_B[0] <= k < OCCLUDED_B[1]:
                continue
            pose = agent_pose(name, np.array([t]))[0]
            attr = (
                "vehicle.parked" if parked else ("vehicle.moving" if cat.startswith("vehicle") else "pedestrian.moving")
            )
            attr_tokens = [attributes[attr]["token"]] if not cat.startswith("movable") else []
            chain.append(
                {
                    "token": tok("ann"),
                    "sample_token": s["token"],
                    "instance_token": inst["token"],
                    "visibility_token": "4",
                    "attribute_tokens": attr_tokens,
                    "translation": [float(pose[0]), float(pose[1]), 0.8],
                    "size": list(size),
                    "rotation": quat(float(pose[2])),
                    "prev": "",
                    "next": "",
                    "num_lidar_pts": 10,
                    "num_radar_pts": 0,
                }
            )
        for a, b in zip(chain[:-1], chain[1:]):
            a["next"], b["prev"] = b["token"], a["token"]
        inst.update(
            nbr_annotations=len(chain),
            first_annotation_token=chain[0]["token"],
            last_annotation_token=chain[-1]["token"],
        )
        instances.append(inst)
        annotations += chain

    tables = {
        "scene": [scene],
        "sample": samples,
        "sample_data": sample_data,
        "ego_pose": ego_poses,
        "sample_annotation": annotations,
        "instance": instances,
        "category": list(categories.values()),
        "attribute": list(attributes.values()),
        "log": [log],
        "map": maps,
        "sensor": sensors,
        "calibrated_sensor": calib,
        "visibility": [
            {"token": str(k), "level": lvl, "description": ""}  # read by the devkit only
            for k, lvl in enumerate(("v0-40", "v40-60", "v60-80", "v80-100"), 1)
        ],
    }
    folder = os.path.join(root, version)
    os.makedirs(folder, exist_ok=True)
    for name, records in tables.items():
        with open(os.path.join(folder, f"{name}.json"), "w") as fh:
            json.dump(records, fh, indent=0)
    os.makedirs(os.path.join(root, "maps", "expansion"), exist_ok=True)
    # the semantic-prior raster named by map.json (the devkit opens it; the importer does not)
    Image.new("L", (8, 8), 255).save(os.path.join(root, maps[0]["filename"]))
    with open(os.path.join(root, "maps", "expansion", f"{location}.json"), "w") as fh:
        json.dump(_map_json(tok), fh)
    return Truth(dataroot=root, version=version, keyframe_times=t_kf - t_kf[0])
