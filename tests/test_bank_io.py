"""jaxsim.bank_io: round trips, and clear ScenarioFormatErrors for files that are not banks."""

from __future__ import annotations

import os

import numpy as np
import pytest
from builders import bank_of, straight_road

from jaxsim.bank_io import FORMAT_NAME, FORMAT_VERSION, load_bank, save_bank
from jaxsim.scenario import FIELD_SPECS, ScenarioFormatError, to_numpy


@pytest.fixture
def bank():
    busy = straight_road(agents=[(20.0, 0.0, 0.0, 5.0)], static_boxes=[(50.0, 8.0, 0.0, 4.0, 2.0)])
    return bank_of(straight_road(), busy)


def _arrays(bank) -> dict:
    return dict(__format__=np.array(FORMAT_NAME), __version__=np.array(FORMAT_VERSION), **to_numpy(bank))


def test_round_trip(bank, tmp_path):
    path = tmp_path / "bank.npz"
    save_bank(path, bank)
    assert sorted(os.listdir(tmp_path)) == ["bank.npz"]  # the temp file was renamed away
    back = load_bank(path)
    for k, v in to_numpy(bank).items():
        np.testing.assert_array_equal(np.asarray(getattr(back, k)), v, err_msg=k)
        assert np.asarray(getattr(back, k)).dtype == np.dtype(FIELD_SPECS[k][0])


def test_round_trip_generated(tmp_path):
    from jaxsim.procedural import generate_bank

    bank = generate_bank(3, split="heldout", seed=1)
    save_bank(tmp_path / "g.npz", bank)
    back = load_bank(str(tmp_path / "g.npz"))
    assert back.num_scenarios == 3
    np.testing.assert_array_equal(np.asarray(back.sdf), np.asarray(bank.sdf))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_bank(tmp_path / "nope.npz")


def test_truncated_file(bank, tmp_path):
    path = tmp_path / "bank.npz"
    save_bank(path, bank)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ScenarioFormatError, match="bank.npz"):
        load_bank(path)


def test_not_a_zip(tmp_path):
    path = tmp_path / "text.npz"
    path.write_text("hello")
    with pytest.raises(ScenarioFormatError):
        load_bank(path)


def test_foreign_npz(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, weights=np.zeros(3))
    with pytest.raises(ScenarioFormatError, match="__format__"):
        load_bank(path)


def test_wrong_version(bank, tmp_path):
    arrays = _arrays(bank)
    arrays["__version__"] = np.array(FORMAT_VERSION + 1)
    np.savez(tmp_path / "v.npz", **arrays)
    with pytest.raises(ScenarioFormatError, match="__version__"):
        load_bank(tmp_path / "v.npz")


@pytest.mark.parametrize(
    "field, change",
    [
        ("ego_traj", lambda a: a.astype(np.float64)),  # wrong dtype
        ("agent_valid", lambda a: a[:, :-1]),  # wrong T
        ("lane_points", lambda a: a[..., :1]),  # wrong fixed size
        ("sdf", lambda a: np.where(np.ones_like(a, bool), np.nan, a).astype(np.float32)),  # NaN
        ("layout", lambda a: a[:1]),  # wrong number of scenarios
    ],
)
def test_bad_field_is_named(bank, tmp_path, field, change):
    arrays = _arrays(bank)
    arrays[field] = change(arrays[field])
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ScenarioFormatError, match=field):
        load_bank(tmp_path / "bad.npz")


def test_missing_and_unknown_fields(bank, tmp_path):
    arrays = _arrays(bank)
    del arrays["static_valid"]
    np.savez(tmp_path / "missing.npz", **arrays)
    with pytest.raises(ScenarioFormatError, match="static_valid"):
        load_bank(tmp_path / "missing.npz")
    arrays = _arrays(bank)
    arrays["extra_field"] = np.zeros(2)
    np.savez(tmp_path / "extra.npz", **arrays)
    with pytest.raises(ScenarioFormatError, match="extra_field"):
        load_bank(tmp_path / "extra.npz")
