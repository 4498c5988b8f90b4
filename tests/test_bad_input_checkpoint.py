"""Bad input: damaged checkpoints and policy files are refused, naming the file (issue 18, finding 3)."""

import glob
import json
import os

import jax
import numpy as np
import pytest
from learner_fixtures import tiny_config

from agents.checkpoint import CheckpointError, TrainCheckpoints, load_policy, save_policy
from agents.networks import init_params
from agents.trainer import policy_meta


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory):
    cfg = tiny_config("seeds=1")
    params = init_params(cfg.network, cfg.env, (40,), jax.random.split(jax.random.PRNGKey(0), 1))
    d = tmp_path_factory.mktemp("pol") / "policy"
    save_policy(str(d), params, policy_meta(cfg, (40,), "il"))
    return d, params, cfg


def _copy(src, tmp_path):
    import shutil

    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    return dst


def _largest_data_file(d):
    files = [f for f in glob.glob(str(d / "params" / "**" / "*"), recursive=True) if os.path.isfile(f) and "/d/" in f]
    return max(files, key=os.path.getsize)


def test_policy_json_written_atomically_with_checksum(policy_dir):
    d, _, _ = policy_dir
    meta = json.loads((d / "policy.json").read_text())
    assert len(meta["params_sha256"]) == 64 and meta["params_spec"]
    assert not [f for f in os.listdir(d) if f.startswith(".policy.json")]  # no temp file left
    load_policy(str(d))  # intact: loads


def test_flipped_bytes_in_params_are_detected(policy_dir, tmp_path):
    d = _copy(policy_dir[0], tmp_path)
    path = _largest_data_file(d)
    raw = bytearray(open(path, "rb").read())
    for i in range(len(raw) // 3, len(raw) // 3 + 64):
        raw[i] ^= 0xFF
    open(path, "wb").write(bytes(raw))
    with pytest.raises(CheckpointError) as err:
        load_policy(str(d))
    msg = str(err.value)
    assert str(d / "params") in msg and "\n" not in msg


def test_truncated_params_file_gives_one_line_naming_it(policy_dir, tmp_path):
    d = _copy(policy_dir[0], tmp_path)
    path = _largest_data_file(d)
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(CheckpointError) as err:
        load_policy(str(d))
    msg = str(err.value)
    assert str(d / "params") in msg and "\n" not in msg and len(msg) < 700


def test_half_written_policy_json_names_the_file(policy_dir, tmp_path):
    d = _copy(policy_dir[0], tmp_path)
    text = (d / "policy.json").read_text()
    (d / "policy.json").write_text(text[: len(text) // 2])
    with pytest.raises(CheckpointError, match="policy.json") as err:
        load_policy(str(d))
    assert str(d / "policy.json") in str(err.value)
    (d / "policy.json").write_text(json.dumps({"network": {}, "env": {}}))
    with pytest.raises(CheckpointError, match="obs_shape"):
        load_policy(str(d))


def test_metadata_that_disagrees_with_params_is_refused(policy_dir, tmp_path):
    d = _copy(policy_dir[0], tmp_path)
    meta = json.loads((d / "policy.json").read_text())
    meta["params_spec"][0][1] = [999]
    (d / "policy.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="params_spec"):
        load_policy(str(d))


def test_non_finite_parameters_are_refused(policy_dir, tmp_path):
    _, params, cfg = policy_dir
    bad = jax.tree.map(lambda x: x, params)
    leaves, tree = jax.tree.flatten(bad)
    leaves[0] = np.full(np.shape(leaves[0]), np.nan, np.asarray(leaves[0]).dtype)
    d = tmp_path / "nanpol"
    save_policy(str(d), jax.tree.unflatten(tree, leaves), policy_meta(cfg, (40,), "il"))
    with pytest.raises(CheckpointError, match="NaN/inf"):
        load_policy(str(d))


def test_damaged_training_checkpoint_names_its_folder(tmp_path):
    state = {"w": np.arange(4096, dtype=np.float32), "step": np.int32(3)}
    ck = TrainCheckpoints(str(tmp_path / "ckpt"))
    ck.save(1, state)
    back = ck.restore(jax.tree.map(np.zeros_like, state))
    np.testing.assert_array_equal(back["w"], state["w"])
    step_dir = tmp_path / "ckpt" / "1"
    assert (step_dir / "reconrl_sha256.json").is_file()
    files = [f for f in glob.glob(str(step_dir / "**" / "*"), recursive=True) if os.path.isfile(f) and "/d/" in f]
    path = max(files, key=os.path.getsize)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    with pytest.raises(CheckpointError) as err:
        ck.restore(jax.tree.map(np.zeros_like, state))
    assert str(step_dir) in str(err.value) and "\n" not in str(err.value)
    ck.close()
