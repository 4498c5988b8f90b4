"""Read the nuScenes metadata tables (`<dataroot>/<version>/*.json`) without the devkit.

Each table is a JSON list of records with a `token`; `Tables` keeps them as
token -> record dicts. Records are the raw JSON (the devkit adds reverse-index keys
such as `sample['anns']`; nothing here relies on those).

Required tables are the ones the conversion reads; optional ones refine it:
`attribute` (parked vehicles become static boxes), `calibrated_sensor` + `sensor`
(pick the LIDAR_TOP ego poses by channel instead of by file name), `map` (only
reported). With `use_devkit=True` the records come from `nuscenes.nuscenes.NuScenes`
instead (imported lazily: the devkit pins numpy<2 and is not in the main environment).
"""

from __future__ import annotations

import dataclasses
import json
import os

REQUIRED = ("scene", "sample", "sample_data", "ego_pose", "sample_annotation", "instance", "category", "log")
OPTIONAL = ("attribute", "calibrated_sensor", "sensor", "map")
# fields each required table must carry (checked on the first record)
FIELDS = {
    "scene": ("token", "log_token", "first_sample_token", "name"),
    "sample": ("token", "timestamp", "scene_token", "next"),
    "sample_data": ("token", "sample_token", "ego_pose_token", "timestamp"),
    "ego_pose": ("token", "timestamp", "translation", "rotation"),
    "sample_annotation": ("token", "sample_token", "instance_token", "translation", "size", "rotation"),
    "instance": ("token", "category_token"),
    "category": ("token", "name"),
    "log": ("token", "location"),
}


@dataclasses.dataclass
class Tables:
    """token -> record dict per table; optional tables are empty dicts when absent."""

    root: str
    version: str
    scene: dict
    sample: dict
    sample_data: dict
    ego_pose: dict
    sample_annotation: dict
    instance: dict
    category: dict
    log: dict
    attribute: dict
    calibrated_sensor: dict
    sensor: dict
    map: dict


def _index(name: str, records, path: str) -> dict:
    if not isinstance(records, list):
        raise ValueError(
            f"nuScenes table '{name}' ({path}) must be a JSON list of records, got {type(records).__name__}"
        )
    out = {}
    for k, rec in enumerate(records):
        if not isinstance(rec, dict) or "token" not in rec:
            raise ValueError(f"nuScenes table '{name}' ({path}): record {k} has no 'token'")
        out[rec["token"]] = rec
    need = FIELDS.get(name, ())
    if out:
        first = next(iter(out.values()))
        missing = [f for f in need if f not in first]
        if missing:
            raise ValueError(
                f"nuScenes table '{name}' ({path}): records lack field(s) {missing}; expected {list(need)}"
            )
    return out


def _read(path: str, name: str):
    try:
        with open(path) as fh:
            return json.load(fh)
    except json.JSONDecodeError as err:
        raise ValueError(f"nuScenes table '{name}' ({path}) is not valid JSON: {err}") from err


def table_dir(dataroot: str, version: str) -> str:
    if not os.path.isdir(dataroot):
        raise FileNotFoundError(f"nuScenes dataroot not found: {dataroot}")
    folder = os.path.join(dataroot, version)
    if not os.path.isdir(folder):
        found = sorted(d for d in os.listdir(dataroot) if d.startswith("v1.0"))
        raise FileNotFoundError(
            f"nuScenes version folder not found: {folder} (versions in {dataroot}: {found or 'none'})"
        )
    return folder


def load_tables(dataroot: str, version: str = "v1.0-mini", use_devkit: bool = False) -> Tables:
    """Load the tables of `version` under `dataroot`.

    Raises FileNotFoundError naming a missing folder or required `<table>.json`, and
    ValueError naming a table that is not a list of records with the expected fields.
    """
    if use_devkit:
        from jaxsim.sources.nuscenes.devkit import devkit_records

        raw = devkit_records(dataroot, version)
        folder = os.path.join(dataroot, version)
    else:
        folder = table_dir(dataroot, version)
        raw = {}
        for name in REQUIRED:
            path = os.path.join(folder, f"{name}.json")
            if not os.path.isfile(path):
                raise FileNotFoundError(f"nuScenes table '{name}' missing: {path} not found")
            raw[name] = _read(path, name)
        for name in OPTIONAL:
            path = os.path.join(folder, f"{name}.json")
            raw[name] = _read(path, name) if os.path.isfile(path) else []
    tabs = {name: _index(name, raw.get(name, []), os.path.join(folder, f"{name}.json")) for name in REQUIRED + OPTIONAL}
    if not tabs["scene"]:
        raise ValueError(f"nuScenes table 'scene' ({folder}) has no scenes")
    return Tables(root=dataroot, version=version, **tabs)


def category_name(tables: Tables, instance_token: str) -> str:
    inst = tables.instance.get(instance_token)
    if inst is None:
        raise ValueError(
            f"nuScenes table 'instance' has no record {instance_token!r} (referenced by sample_annotation)"
        )
    cat = tables.category.get(inst["category_token"])
    if cat is None:
        raise ValueError(f"nuScenes table 'category' has no record {inst['category_token']!r}")
    return cat["name"]


def channel_of(tables: Tables, sample_data: dict) -> str:
    """Sensor channel (e.g. 'LIDAR_TOP') of a sample_data record: from calibrated_sensor ->
    sensor when those tables exist, else from the file name ('samples/LIDAR_TOP/...')."""
    if "channel" in sample_data:  # devkit records carry it
        return sample_data["channel"]
    cs = tables.calibrated_sensor.get(sample_data.get("calibrated_sensor_token", ""))
    if cs is not None and cs.get("sensor_token") in tables.sensor:
        return tables.sensor[cs["sensor_token"]].get("channel", "")
    parts = str(sample_data.get("filename", "")).replace("\\", "/").split("/")
    return parts[1] if len(parts) > 2 else ""
