"""One nuScenes scene on a uniform time grid: ego poses and annotated agents at 1/dt Hz.

Ego poses exist for every sample_data record; the LIDAR_TOP ones (20 Hz, keyframes and
sweeps) are interpolated with a cubic spline in x, y (then a 0.7 s cubic Savitzky-Golay
filter against localisation noise) and linearly in unwrapped yaw (= slerp for yaw-only
rotations), then moved from the rear axle (ego_pose frame) to the box centre.
Annotations exist at keyframes (2 Hz): positions are interpolated linearly, yaw by the
shortest arc, and an agent is valid only between two of its annotations at most
`max_gap` apart; its speed is the keyframe segment's mean speed.
Grid times run from the first keyframe, every dt, to the last keyframe (or the last
ego pose, if earlier). Coordinates stay in the map frame (float64) here.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.signal import savgol_filter

from jaxsim.scenario import AgentType
from jaxsim.sources.nuscenes.arcline import quaternion_yaw
from jaxsim.sources.nuscenes.tables import Tables, category_name, channel_of

EGO_CHANNEL = "LIDAR_TOP"
SMOOTH_WINDOW = 7  # grid steps of the cubic Savitzky-Golay filter on ego positions
PARKED = "vehicle.parked"


def agent_type(category: str) -> int | None:
    """AgentType of a nuScenes category name, or None for non-agents (objects, animals)."""
    if category.startswith(("vehicle.bicycle", "vehicle.motorcycle")):
        return int(AgentType.CYCLIST)
    if category.startswith("vehicle."):
        return int(AgentType.VEHICLE)
    if category.startswith("human.pedestrian"):
        return int(AgentType.PEDESTRIAN)
    return None


AGENT_COLUMNS = ("xy", "yaw", "speed", "valid", "size", "type", "parked", "instance")  # SceneLog.from_columns


@dataclasses.dataclass
class SceneLog:
    """A scene resampled on its time grid (K steps of dt from the first keyframe).

    ego: (K, 3) box-centre [x, y, yaw] (map frame, m, rad).
    agent_xy (K, M, 2), agent_yaw (K, M), agent_speed (K, M) m/s, agent_valid (K, M);
    agent_size (M, 2) [length, width]; agent_type (M,) AgentType; parked (M,) bool
    (every annotation carries vehicle.parked); instance (M,) tokens.
    """

    name: str
    token: str
    location: str
    dt: float
    ego: np.ndarray
    agent_xy: np.ndarray
    agent_yaw: np.ndarray
    agent_speed: np.ndarray
    agent_valid: np.ndarray
    agent_size: np.ndarray
    agent_type: np.ndarray
    parked: np.ndarray
    instance: list

    @property
    def num_steps(self) -> int:
        return self.ego.shape[0]

    @classmethod
    def from_columns(cls, cols: dict, ego: np.ndarray, **meta) -> "SceneLog":
        """A SceneLog from per-agent lists `cols` (`AGENT_COLUMNS`, one entry per agent:
        xy (K, 2), yaw (K,), speed (K,), valid (K,), size (2,), type, parked, instance),
        ego (K, 3) and name/token/location/dt in `meta`."""
        M, K = len(cols["instance"]), len(ego)
        stack = lambda k, shape, dtype: np.stack(cols[k], 1) if M else np.zeros(shape, dtype)  # noqa: E731
        return cls(
            ego=ego,
            agent_xy=stack("xy", (K, 0, 2), float),
            agent_yaw=stack("yaw", (K, 0), float),
            agent_speed=stack("speed", (K, 0), float),
            agent_valid=stack("valid", (K, 0), bool),
            agent_size=np.array(cols["size"], float).reshape(M, 2),
            agent_type=np.array(cols["type"], np.int32),
            parked=np.array(cols["parked"], bool),
            instance=cols["instance"],
            **meta,
        )


def scene_samples(tables: Tables, scene: dict) -> list[dict]:
    """The scene's keyframe samples in time order (following sample.next)."""
    out, token = [], scene["first_sample_token"]
    while token:
        rec = tables.sample.get(token)
        if rec is None:
            raise ValueError(f"scene {scene['name']!r}: sample {token!r} is not in table 'sample'")
        if rec["scene_token"] != scene["token"]:
            break
        out.append(rec)
        token = rec.get("next", "")
        if len(out) > 100_000:
            raise ValueError(f"scene {scene['name']!r}: the sample.next chain does not end")
    return out


def ego_poses(tables: Tables, index: dict, sample_tokens: list, scene_name: str) -> tuple[np.ndarray, np.ndarray]:
    """(times us (n,), poses (n, 3) rear-axle [x, y, yaw]) of the scene, sorted, from
    LIDAR_TOP sample_data (all of the scene's sample_data if none is LIDAR_TOP)."""
    recs = [sd for tok in sample_tokens for sd in index["sample_data"].get(tok, ())]
    lidar = [sd for sd in recs if channel_of(tables, sd) == EGO_CHANNEL]
    recs = lidar or recs
    poses = {}
    for sd in recs:
        ep = tables.ego_pose.get(sd["ego_pose_token"])
        if ep is None:
            raise ValueError(
                f"scene {scene_name!r}: ego_pose {sd['ego_pose_token']!r} (of sample_data "
                f"{sd['token']!r}) is not in table 'ego_pose'"
            )
        poses[int(ep["timestamp"])] = (ep["translation"][0], ep["translation"][1], quaternion_yaw(ep["rotation"]))
    if len(poses) < 2:
        raise ValueError(f"scene {scene_name!r} has {len(poses)} ego pose(s); at least 2 are needed")
    times = np.array(sorted(poses), np.int64)
    return times, np.array([poses[t] for t in times], float)


def _ego_on_grid(t_pose: np.ndarray, pose: np.ndarray, t_grid: np.ndarray, offset: float) -> np.ndarray:
    yaw = np.unwrap(pose[:, 2])
    if len(t_pose) >= 4:
        xy = CubicSpline(t_pose, pose[:, :2], axis=0)(t_grid)
    else:
        xy = np.stack([np.interp(t_grid, t_pose, pose[:, k]) for k in range(2)], -1)
    if len(t_grid) >= SMOOTH_WINDOW:  # exact for cubic motion; damps localisation noise
        xy = savgol_filter(xy, SMOOTH_WINDOW, 3, axis=0, mode="interp")
    yaw = np.interp(t_grid, t_pose, yaw)
    xy = xy + offset * np.stack([np.cos(yaw), np.sin(yaw)], -1)
    return np.concatenate([xy, ((yaw + np.pi) % (2 * np.pi) - np.pi)[:, None]], -1)


def _track_on_grid(t_obs, xy, yaw, t_grid, max_gap):
    """Linear interpolation of one track; returns xy (K, 2), yaw (K,), speed (K,), valid (K,)."""
    K = len(t_grid)
    out_xy, out_yaw, out_v, valid = np.zeros((K, 2)), np.zeros(K), np.zeros(K), np.zeros(K, bool)
    if len(t_obs) < 2:
        return out_xy, out_yaw, out_v, valid
    j = np.clip(np.searchsorted(t_obs, t_grid, side="right") - 1, 0, len(t_obs) - 2)
    gap = t_obs[j + 1] - t_obs[j]
    f = (t_grid - t_obs[j]) / gap
    valid = (f >= -1e-9) & (f <= 1 + 1e-9) & (gap <= max_gap)
    f = np.clip(f, 0.0, 1.0)
    out_xy = xy[j] * (1 - f)[:, None] + xy[j + 1] * f[:, None]
    dyaw = (yaw[j + 1] - yaw[j] + np.pi) % (2 * np.pi) - np.pi  # shortest arc = yaw slerp
    out_yaw = (yaw[j] + f * dyaw + np.pi) % (2 * np.pi) - np.pi
    out_v = np.hypot(*(xy[j + 1] - xy[j]).T) / gap
    return out_xy, out_yaw, out_v, valid


def build_scene_log(tables: Tables, scene: dict, index: dict, dt: float, ego_offset: float, max_gap: float) -> SceneLog:
    """Resample `scene` on its dt grid. index: `sample_index(tables)`."""
    name = scene["name"]
    samples = scene_samples(tables, scene)
    if len(samples) < 2:
        raise ValueError(f"scene {name!r} has {len(samples)} keyframe sample(s); at least 2 are needed")
    log = tables.log.get(scene["log_token"])
    if log is None:
        raise ValueError(f"scene {name!r}: log {scene['log_token']!r} is not in table 'log'")
    t_kf = np.array([int(s["timestamp"]) for s in samples], np.int64)
    t0 = t_kf[0]
    t_pose_us, pose = ego_poses(tables, index, [s["token"] for s in samples], name)
    t_end = min(t_kf[-1], t_pose_us[-1]) - t0
    t_grid = np.arange(int(np.floor(t_end * 1e-6 / dt + 1e-6)) + 1) * dt
    ego = _ego_on_grid((t_pose_us - t0) * 1e-6, pose, t_grid, ego_offset)

    attr_names = {k: a.get("name", "") for k, a in tables.attribute.items()}
    tracks: dict[str, list] = {}
    for s in samples:
        for ann in index["annotations"].get(s["token"], ()):
            tracks.setdefault(ann["instance_token"], []).append((int(s["timestamp"]), ann))
    cols = {k: [] for k in AGENT_COLUMNS}
    for inst, obs in tracks.items():
        kind = agent_type(category_name(tables, inst))
        if kind is None or len(obs) < 2:
            continue
        obs.sort(key=lambda o: o[0])
        t_obs = np.array([(o[0] - t0) * 1e-6 for o in obs])
        xy = np.array([o[1]["translation"][:2] for o in obs], float)
        yaw = np.array([quaternion_yaw(o[1]["rotation"]) for o in obs])
        w, length = np.median(np.array([o[1]["size"][:2] for o in obs], float), axis=0)  # size is [w, l, h]
        txy, tyaw, tv, tvalid = _track_on_grid(t_obs, xy, yaw, t_grid, max_gap)
        if not tvalid.any():
            continue
        parked = bool(attr_names) and all(
            any(attr_names.get(a) == PARKED for a in o[1].get("attribute_tokens", [])) for o in obs
        )
        for key, val in zip(cols, (txy, tyaw, tv, tvalid, (length, w), kind, parked, inst)):
            cols[key].append(val)
    return SceneLog.from_columns(cols, ego, name=name, token=scene["token"], location=log["location"], dt=dt)


def sample_index(tables: Tables) -> dict:
    """{'annotations': sample token -> annotation records, 'sample_data': sample token ->
    sample_data records} (built once; the tables only link child -> parent)."""
    out = {"annotations": {}, "sample_data": {}}
    for ann in tables.sample_annotation.values():
        out["annotations"].setdefault(ann["sample_token"], []).append(ann)
    for sd in tables.sample_data.values():
        out["sample_data"].setdefault(sd["sample_token"], []).append(sd)
    return out
