"""Read a nuScenes map-expansion file (`<dataroot>/maps/expansion/<location>.json`).

Layers used (map version 1.3 layout): `node` {token, x, y}; `polygon` {token,
exterior_node_tokens, holes: [{node_tokens}]}; `drivable_area` {token, polygon_tokens}
(older files: polygon_token), with `road_segment` as a fallback; `lane` and
`lane_connector` {token, polygon_token, ...}; `arcline_path_3` {lane token: [arcline
paths]} for centrelines; `connectivity` {lane token: {incoming, outgoing}} for the lane
graph. Lanes without arcline paths fall back to the mid-line of their left/right
divider nodes (`left_lane_divider_segments` / `right_lane_divider_segments`).
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from jaxsim.procedural.curves import arc_lengths, resample
from jaxsim.sources.nuscenes.arcline import discretize_lane

DEFAULT_LANE_WIDTH = 3.5  # m, when a lane has no polygon
LANE_WIDTH_RANGE = (2.5, 5.5)  # m, clip of polygon area / centreline length
CENTERLINE_RES = 0.5  # m between discretised centreline poses


@dataclasses.dataclass
class MapData:
    """A location's map in world metres.

    lanes: list of dicts {token, kind ('lane' | 'lane_connector'), pose (K, 3)
      centreline [x, y, yaw], width m, outgoing [tokens]}; lane_bbox (n, 4)
      [xmin, ymin, xmax, ymax] per lane.
    drivable: list of (exterior (n, 2), [holes (m, 2)]); drivable_bbox (k, 4).
    """

    location: str
    version: str
    lanes: list
    lane_bbox: np.ndarray
    drivable: list
    drivable_bbox: np.ndarray
    skipped_lanes: int


def map_path(dataroot: str, location: str) -> str:
    return os.path.join(dataroot, "maps", "expansion", f"{location}.json")


def _bbox(points_list) -> np.ndarray:
    if not points_list:
        return np.zeros((0, 4))
    return np.array([np.concatenate([p.min(0), p.max(0)]) for p in points_list])


def _shoelace(xy: np.ndarray) -> float:
    return 0.5 * abs(float(np.dot(xy[:, 0], np.roll(xy[:, 1], -1)) - np.dot(xy[:, 1], np.roll(xy[:, 0], -1))))


class _Geometry:
    def __init__(self, obj: dict, path: str):
        for key in ("node", "polygon"):
            if key not in obj:
                raise ValueError(f"map file {path} has no '{key}' layer (is it a map-expansion v1.3 file?)")
        self.path = path
        self.node = {n["token"]: (float(n["x"]), float(n["y"])) for n in obj["node"]}
        self.polygon = {p["token"]: p for p in obj["polygon"]}

    def nodes(self, tokens) -> np.ndarray:
        try:
            return np.array([self.node[t] for t in tokens], float).reshape(-1, 2)
        except KeyError as err:
            raise ValueError(
                f"map file {self.path}: node {err.args[0]!r} is referenced but not in the 'node' layer"
            ) from err

    def polygon_xy(self, token: str):
        rec = self.polygon.get(token)
        if rec is None:
            raise ValueError(f"map file {self.path}: polygon {token!r} is referenced but not in the 'polygon' layer")
        holes = [self.nodes(h["node_tokens"]) for h in rec.get("holes", [])]
        return self.nodes(rec["exterior_node_tokens"]), [h for h in holes if len(h) >= 3]


def _divider_midline(geo: _Geometry, rec: dict) -> np.ndarray | None:
    """Centre (K, 3) between a lane's divider node chains, or None (no arcline fallback)."""
    left = [s["node_token"] for s in rec.get("left_lane_divider_segments", [])]
    right = [s["node_token"] for s in rec.get("right_lane_divider_segments", [])]
    if len(left) < 2 or len(right) < 2:
        return None
    a, b = resample(geo.nodes(left), 64), resample(geo.nodes(right), 64)
    mid = 0.5 * (a + b)
    if arc_lengths(mid)[-1] < 1.0:
        return None
    mid = resample(mid, spacing=CENTERLINE_RES)
    d = np.diff(mid, axis=0)
    yaw = np.arctan2(d[:, 1], d[:, 0])
    return np.concatenate([mid, np.append(yaw, yaw[-1])[:, None]], -1)


def parse_map(obj: dict, location: str, path: str = "<map>") -> MapData:
    """MapData from a loaded map-expansion JSON object."""
    geo = _Geometry(obj, path)
    if "lane" not in obj:
        raise ValueError(f"map file {path} has no 'lane' layer")
    arclines = obj.get("arcline_path_3", {})
    connectivity = obj.get("connectivity", {})
    lanes, skipped = [], 0
    for kind in ("lane", "lane_connector"):
        for rec in obj.get(kind, []):
            paths = arclines.get(rec["token"])
            pose = discretize_lane(paths, CENTERLINE_RES) if paths else _divider_midline(geo, rec)
            if pose is None or len(pose) < 2:
                skipped += 1
                continue
            length = arc_lengths(pose[:, :2])[-1]
            width = DEFAULT_LANE_WIDTH
            if rec.get("polygon_token") in geo.polygon and length > 1.0:
                width = float(np.clip(_shoelace(geo.polygon_xy(rec["polygon_token"])[0]) / length, *LANE_WIDTH_RANGE))
            lanes.append(
                dict(
                    token=rec["token"],
                    kind=kind,
                    pose=pose,
                    width=width,
                    outgoing=list(connectivity.get(rec["token"], {}).get("outgoing", [])),
                    has_connectivity=rec["token"] in connectivity,
                )
            )
    layer = "drivable_area" if obj.get("drivable_area") else "road_segment"
    drivable = []
    for rec in obj.get(layer, []):
        tokens = rec.get("polygon_tokens") or ([rec["polygon_token"]] if rec.get("polygon_token") else [])
        for tok in tokens:
            ext, holes = geo.polygon_xy(tok)
            if len(ext) >= 3:
                drivable.append((ext, holes))
    if not drivable:
        raise ValueError(f"map file {path} has no 'drivable_area' (or 'road_segment') polygons")
    return MapData(
        location=location,
        version=str(obj.get("version", "1.0")),
        lanes=lanes,
        lane_bbox=_bbox([ln["pose"][:, :2] for ln in lanes]),
        drivable=drivable,
        drivable_bbox=_bbox([ext for ext, _ in drivable]),
        skipped_lanes=skipped,
    )


def load_map(dataroot: str, location: str, use_devkit: bool = False) -> MapData:
    """Load and parse the expansion map of `location` (e.g. 'boston-seaport')."""
    path = map_path(dataroot, location)
    if use_devkit:
        from jaxsim.sources.nuscenes.devkit import devkit_map_json

        return parse_map(devkit_map_json(dataroot, location), location, path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"nuScenes map expansion file missing: {path} not found "
            "(download the map expansion pack v1.3 into <dataroot>/maps/expansion)"
        )
    try:
        with open(path) as fh:
            obj = json.load(fh)
    except json.JSONDecodeError as err:
        raise ValueError(f"map file {path} is not valid JSON: {err}") from err
    return parse_map(obj, location, path)
