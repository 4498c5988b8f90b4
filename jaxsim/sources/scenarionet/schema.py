"""Schema checks of a ScenarioNet scenario description (one loaded `.pkl` dict).

Errors are `ScenarioNetFormatError`s naming the scene file and the key path, e.g.
`sd_x.pkl: tracks['ego'].state.position: shape (191, 1), expected (T, 2) or (T, 3)`.
Only the fields the importer reads are checked; anything else in the file is ignored.
"""

from __future__ import annotations

import numpy as np


class ScenarioNetFormatError(ValueError):
    """A scenario description misses a key or holds a value of the wrong shape/type."""


TRACK_KEYS = ("position", "heading", "valid")


def _fail(src: str, key: str, msg: str):
    raise ScenarioNetFormatError(f"{src}: {key}: {msg}")


def _array(src, key, value, ndim_ok, cols=None, length=None) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        _fail(src, key, f"not a numeric array (got {type(value).__name__})")
    if arr.ndim not in ndim_ok:
        _fail(src, key, f"shape {arr.shape}, expected a {' or '.join(f'{n}-d' for n in ndim_ok)} array")
    if cols is not None and arr.ndim == 2 and arr.shape[1] not in cols:
        _fail(src, key, f"shape {arr.shape}, expected (T, {' or '.join(map(str, cols))})")
    if length is not None and arr.shape[0] != length:
        _fail(src, key, f"has {arr.shape[0]} steps, expected {length} (tracks of mismatched lengths)")
    return arr


def validate(sd, src: str) -> dict:
    """Check a loaded scenario description; return {'sdc_id', 'length', 'dt', 'dataset'}.

    Raises ScenarioNetFormatError naming `src` and the key.
    """
    if not isinstance(sd, dict):
        _fail(src, "<top level>", f"a {type(sd).__name__}, expected a dict (scenario description)")
    for key in ("metadata", "tracks", "map_features"):
        if key not in sd:
            _fail(src, key, "missing (a scenario description has id, length, metadata, tracks, map_features)")
        if not isinstance(sd[key], dict):
            _fail(src, key, f"a {type(sd[key]).__name__}, expected a dict")
    meta, tracks = sd["metadata"], sd["tracks"]
    sdc = meta.get("sdc_id")
    if sdc is None:
        _fail(src, "metadata.sdc_id", "missing (the ego track's key)")
    if sdc not in tracks:
        _fail(src, "metadata.sdc_id", f"{sdc!r} is not a key of tracks")
    dt = meta.get("sample_rate", meta.get("timestep", 0.1))
    if not isinstance(dt, (int, float, np.floating)) or not 0.01 <= float(dt) <= 1.0:
        _fail(src, "metadata.sample_rate", f"{dt!r}, expected seconds per step in [0.01, 1]")
    length = None
    for tid, track in tracks.items():
        where = f"tracks[{tid!r}]"
        if not isinstance(track, dict) or not isinstance(track.get("state"), dict):
            _fail(src, f"{where}.state", "missing or not a dict")
        st = track["state"]
        if "type" not in track:
            _fail(src, f"{where}.type", "missing")
        for key in TRACK_KEYS:
            if key not in st:
                _fail(src, f"{where}.state.{key}", "missing")
        pos = _array(src, f"{where}.state.position", st["position"], (2,), (2, 3), length)
        length = pos.shape[0] if length is None else length
        _array(src, f"{where}.state.heading", st["heading"], (1, 2), (1,), length)
        _array(src, f"{where}.state.valid", st["valid"], (1, 2), (1,), length)
        for key in ("velocity",):
            if key in st:
                _array(src, f"{where}.state.{key}", st[key], (2,), (2,), length)
        for key in ("length", "width"):
            if key in st:
                _array(src, f"{where}.state.{key}", st[key], (1, 2), (1,), length)
    if "length" in sd and length is not None and int(sd["length"]) != length:
        _fail(src, "length", f"{sd['length']} but tracks have {length} steps")
    ego = tracks[sdc]["state"]
    valid = np.asarray(ego["valid"], float).reshape(-1) > 0
    if not valid.any():
        _fail(src, f"tracks[{sdc!r}].state.valid", "the SDC track has no valid step")
    if not np.all(np.isfinite(np.asarray(ego["position"], float)[valid, :2])):
        _fail(src, f"tracks[{sdc!r}].state.position", "non-finite values at valid steps")
    if not np.all(np.isfinite(np.asarray(ego["heading"], float).reshape(-1)[valid])):
        _fail(src, f"tracks[{sdc!r}].state.heading", "non-finite values at valid steps")
    for fid, feat in sd["map_features"].items():
        if not isinstance(feat, dict) or "type" not in feat:
            _fail(src, f"map_features[{fid!r}].type", "missing")
        for key in ("polyline", "polygon"):
            if key in feat and len(feat[key]):
                arr = _array(src, f"map_features[{fid!r}].{key}", feat[key], (2,))
                if arr.shape[1] < 2:
                    _fail(src, f"map_features[{fid!r}].{key}", f"shape {arr.shape}, expected (N, >= 2)")
    return dict(
        sdc_id=sdc,
        length=int(length),
        dt=float(dt),
        dataset=str(meta.get("dataset", "")),
        location=str(meta.get("map", "")),
        name=str(sd.get("id", meta.get("scenario_id", ""))),
    )
