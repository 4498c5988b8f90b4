"""Bad input: physically impossible or garbage scenario bank files (issue 18, finding 4)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from builders import bank_of, straight_road

from jaxsim.bank_checks import COORD_LIMIT, check_bank_physics
from jaxsim.bank_io import FORMAT_NAME, FORMAT_VERSION, load_bank, save_bank
from jaxsim.scenario import ScenarioFormatError, to_numpy


def _arrays():
    busy = straight_road(agents=[(20.0, 0.0, 0.0, 5.0)], static_boxes=[(50.0, 8.0, 0.0, 4.0, 2.0)])
    return to_numpy(bank_of(straight_road(), busy))


def _write(path, arrays):
    np.savez(path, __format__=np.array(FORMAT_NAME), __version__=np.array(FORMAT_VERSION), **arrays)
    return path


def _set(a, field, scene, value, index=()):
    a[field] = a[field].copy()
    a[field][(scene,) + (index if isinstance(index, tuple) else (index,))] = value
    return a


CASES = [
    ("dt", lambda a: _set(a, "dt", 1, 0.0)),
    ("dt", lambda a: _set(a, "dt", 1, -0.1)),
    ("ego_valid", lambda a: _set(a, "ego_valid", 1, False)),
    ("sdf_res", lambda a: _set(a, "sdf_res", 1, 0.0)),
    ("ego_size", lambda a: _set(a, "ego_size", 1, -4.8, 0)),
    ("agent_size", lambda a: _set(a, "agent_size", 1, -1.0, (0, 1))),
    ("static_boxes", lambda a: _set(a, "static_boxes", 1, -2.0, (0, 3))),
    ("ego_lane", lambda a: _set(a, "ego_lane", 1, 99, 5)),
    ("lane_succ", lambda a: _set(a, "lane_succ", 1, -7, (0, 0))),
    ("lane_left", lambda a: _set(a, "lane_left", 1, 4, 0)),
    ("ego_traj", lambda a: _set(a, "ego_traj", 1, 1e30, (3, 0))),
    ("lane_points", lambda a: _set(a, "lane_points", 1, -1e30, (0, 0, 1))),
    ("ego_traj[..., 3] (speed)", lambda a: _set(a, "ego_traj", 1, -3.0, (2, 3))),
    ("agent_traj[..., 3] (speed)", lambda a: _set(a, "agent_traj", 1, -3.0, (2, 0, 3))),
    ("lane_num_points", lambda a: _set(a, "lane_num_points", 1, 17, 0)),
    ("agent_type", lambda a: _set(a, "agent_type", 1, 9, 0)),
]


@pytest.mark.parametrize("field, break_it", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_impossible_bank_is_refused_naming_scene_and_field(tmp_path, field, break_it):
    path = _write(tmp_path / "bad.npz", break_it(_arrays()))
    with pytest.raises(ScenarioFormatError) as err:
        load_bank(path)
    msg = str(err.value)
    assert str(path) in msg and "scene 1" in msg and f"'{field}" in msg and "allowed" in msg


def test_valid_banks_pass(tmp_path):
    from jaxsim.procedural import generate_bank

    check_bank_physics(_arrays())
    bank = generate_bank(4, split="train", seed=3)
    save_bank(tmp_path / "g.npz", bank)
    assert load_bank(tmp_path / "g.npz").num_scenarios == 4
    assert COORD_LIMIT >= 1e4  # generous for real logs in a scene frame


def _garbage_files(rng, valid: dict):
    """Random bytes, damaged zips and npz files with random fields broken in random ways."""
    buf = io.BytesIO()
    np.savez(buf, __format__=np.array(FORMAT_NAME), __version__=np.array(FORMAT_VERSION), **valid)
    good = buf.getvalue()
    yield "bytes", rng.bytes(int(rng.integers(0, 4000)))
    yield "npy", b"\x93NUMPY" + rng.bytes(200)
    for _ in range(12):  # flipped or cut bytes of a valid file
        raw = bytearray(good)
        for i in rng.integers(0, len(raw), size=int(rng.integers(1, 20))):
            raw[i] = int(rng.integers(0, 256))
        yield "flip", bytes(raw[: int(rng.integers(len(raw) // 2, len(raw) + 1))])
    specials = [np.nan, np.inf, -np.inf, 0.0, -1.0, 1e30, -1e30, 3.4e38, 1e-30, -7, 2**31 - 1, -(2**31)]
    names = sorted(valid)
    for _ in range(40):  # a valid layout with one field holding random nonsense
        a = {k: v.copy() for k, v in valid.items()}
        name = names[int(rng.integers(len(names)))]
        arr = a[name]
        flat = arr.reshape(-1)
        if flat.size:
            idx = rng.integers(0, flat.size, size=int(rng.integers(1, 4)))
            val = specials[int(rng.integers(len(specials)))]
            if arr.dtype == bool:
                flat[idx] = bool(rng.integers(2))
            elif np.issubdtype(arr.dtype, np.integer):
                flat[idx] = int(np.clip(np.nan_to_num(val, posinf=2**31 - 1, neginf=-(2**31)), -(2**31), 2**31 - 1))
            else:
                flat[idx] = val
        if rng.random() < 0.15:  # or a wrong shape / dtype
            a[name] = arr.astype(np.float64) if rng.random() < 0.5 else arr[..., :1]
        b = io.BytesIO()
        np.savez(b, __format__=np.array(FORMAT_NAME), __version__=np.array(FORMAT_VERSION), **a)
        yield f"field {name}", b.getvalue()
    z = io.BytesIO()
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("dt.npy", rng.bytes(64))
    yield "zip", z.getvalue()


def test_random_garbage_never_crashes_or_loads_nonsense(tmp_path):
    """Property: every input either loads as a bank that passes every check, or raises a
    ScenarioFormatError naming the file; never another exception."""
    rng = np.random.default_rng(18)
    valid = _arrays()
    loaded = refused = 0
    for k, (what, data) in enumerate(_garbage_files(rng, valid)):
        path = tmp_path / f"g{k}.npz"
        path.write_bytes(data)
        try:
            bank = load_bank(path)
        except ScenarioFormatError as err:
            assert str(path) in str(err), what
            refused += 1
            continue
        a = to_numpy(bank)
        check_bank_physics(a)  # what loads is physically sensible
        for v in a.values():
            assert not np.issubdtype(v.dtype, np.floating) or np.all(np.isfinite(v)), what
        loaded += 1
    assert refused > 30 and loaded + refused == k + 1


def test_non_zip_file_is_named_without_suggesting_an_unsafe_load(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(b"\x80\x04junk that looks like a pickle")
    with pytest.raises(ScenarioFormatError, match="no zip signature") as err:
        load_bank(path)
    assert "allow_pickle" not in str(err.value) and str(path) in str(err.value)
    with pytest.raises(ScenarioFormatError, match="directory"):
        load_bank(tmp_path)
