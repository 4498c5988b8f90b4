"""Bad input: configs and the `reconrl train` run directory (issue 18, findings 1 and 2)."""

import json
import math
import os

import pytest

from agents.cli import main
from agents.train_config import load_config
from jaxsim.config_utils import ConfigError, check_range


# ---- finding 2: NaN / inf pass no range check ----
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_check_range_rejects_non_finite_naming_key_value_and_range(bad):
    with pytest.raises(ConfigError) as err:
        check_range("ppo.lr", bad, 0.0, 1.0)
    msg = str(err.value)
    assert "'ppo.lr'" in msg and repr(bad) in msg and "[0.0, 1.0]" in msg
    with pytest.raises(ConfigError):
        check_range("x", bad)  # unbounded still refuses non-finite


@pytest.mark.parametrize(
    "override, key",
    [
        ("ppo.lr=.nan", "'ppo.lr'"),
        ("ppo.lr=nan", "'ppo.lr'"),
        ("ppo.clip_lat=.nan", "'ppo.clip_lat'"),
        ("env.bev_range=.nan", "'env.bev_range'"),
        ("env.bev_range=.inf", "'env.bev_range'"),
        ("network.init_log_std=.nan", "'network.init_log_std'"),  # a key with no range check
    ],
)
def test_config_rejects_nan_overrides(override, key):
    with pytest.raises(ConfigError, match="finite") as err:
        load_config("configs/smoke.yaml", [override])
    assert key in str(err.value)


def test_cli_nan_lr_fails_before_training(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--config", "configs/smoke.yaml", "--set", "ppo.lr=.nan", "--out", str(out)]) == 2
    assert "'ppo.lr'" in capsys.readouterr().err
    assert not out.exists()


# ---- finding 1: --fresh never deletes a folder that is not a run directory ----
def _user_folder(tmp_path):
    d = tmp_path / "my_thesis"
    d.mkdir()
    (d / "chapter1.tex").write_text("precious")
    return d


def test_fresh_with_config_error_deletes_nothing(tmp_path, capsys):
    d = _user_folder(tmp_path)
    rc = main(["train", "--config", "configs/smoke.yaml", "--set", "scenarios.source=file", "--fresh", "--out", str(d)])
    assert rc == 2
    assert (d / "chapter1.tex").read_text() == "precious"
    # the config error is not reached: the folder is refused first, or the config error is named
    err = capsys.readouterr().err
    assert "not a reconrl run directory" in err or "scenarios.train_path" in err


def test_fresh_on_valid_config_refuses_a_user_folder(tmp_path, capsys):
    d = _user_folder(tmp_path)
    rc = main(["train", "--config", "configs/smoke.yaml", "--fresh", "--out", str(d)])
    assert rc == 2
    assert "not a reconrl run directory" in capsys.readouterr().err
    assert sorted(os.listdir(d)) == ["chapter1.tex"]


def test_file_source_errors_before_anything_is_created(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", "--config", "configs/smoke.yaml", "--set", "scenarios.source=file", "--out", str(out)])
    assert rc == 2 and "'scenarios.train_path'" in capsys.readouterr().err
    assert not out.exists()
    rc = main(["train", "--config", "configs/smoke.yaml", "--set", "scenarios.source=file",
               "--set", f"scenarios.train_path={tmp_path / 'nope.npz'}",
               "--set", f"scenarios.heldout_path={tmp_path / 'nope.npz'}", "--out", str(out)])  # fmt: skip
    assert rc == 2 and "nope.npz" in capsys.readouterr().err
    assert not out.exists()


def test_fresh_deletes_a_marked_run_directory_only(tmp_path):
    from agents.commands.train import RUN_MARKER, RunDirError, prepare_out

    out = tmp_path / "run"
    cfg = load_config(None, [])
    prepare_out(cfg, str(out), fresh=False)
    assert (out / RUN_MARKER).is_file()
    (out / "stale.txt").write_text("old")
    prepare_out(cfg, str(out), fresh=True)
    assert not (out / "stale.txt").exists() and (out / RUN_MARKER).is_file()
    (out / RUN_MARKER).unlink()  # still a legacy run dir (config.yaml with our sections)
    prepare_out(cfg, str(out), fresh=True)
    other = _user_folder(tmp_path)
    (other / "config.yaml").write_text("model: {layers: 3}\n")  # someone else's config
    with pytest.raises(RunDirError, match="not a reconrl run directory"):
        prepare_out(cfg, str(other), fresh=True)
    assert (other / "chapter1.tex").exists()


def test_out_that_is_a_file_or_unwritable_is_refused_early(tmp_path, capsys):
    f = tmp_path / "file.txt"
    f.write_text("x")
    assert main(["train", "--config", "configs/smoke.yaml", "--out", str(f)]) == 2
    assert "existing file" in capsys.readouterr().err and f.read_text() == "x"
    assert main(["train", "--config", "configs/smoke.yaml", "--json", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "existing directory" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_json_helper_never_writes_bare_nan(tmp_path):
    import numpy as np

    from jaxsim.io_utils import write_json

    path = tmp_path / "r.json"
    write_json(path, {"rate": float("nan"), "x": np.float32(1.5), "inf": [float("inf")], "arr": np.arange(2)})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c}"))
    assert data == {"rate": None, "x": 1.5, "inf": [None], "arr": [0, 1]}
    assert not math.isnan(data["x"])
