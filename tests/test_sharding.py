"""Data parallelism over a device mesh (agents.sharding, agents.sharded_ppo).

JAX fixes its device count when it initialises and the suite runs under pytest-xdist, so
the multi-device cases run `tests/sharding_driver.py` in fresh processes with forced
CPU devices (XLA_FLAGS=--xla_force_host_platform_device_count) and compare parameters.
"""

import json
import os
import socket
import subprocess
import sys

import pytest
from learner_fixtures import tiny_config

from agents.sharding import distributed_settings
from jaxsim.config_utils import ConfigError

DRIVER = os.path.join(os.path.dirname(__file__), "sharding_driver.py")
TOL = 1e-5  # the same algorithm; only the order of floating-point sums differs


def _env(devices: int) -> dict:
    flags = f"--xla_force_host_platform_device_count={devices} --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    return dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=flags)


@pytest.mark.slow
def test_eight_devices_match_one_and_checkpoints_resume_on_other_meshes(tmp_path):
    """8-device PPO == today's single-device PPO (2 seeds, same global batch); a run
    saved on 8 devices after chunk 1 of 2 resumes on 1 and on 4 to the same params."""
    subprocess.run([sys.executable, DRIVER, "equivalence", str(tmp_path)], env=_env(8), check=True, timeout=600)
    res = json.loads((tmp_path / "result.json").read_text())
    assert set(res) == {"sharded8", "resume_on_1", "resume_on_4"}
    assert all(v < TOL for v in res.values()), res


@pytest.mark.slow
def test_two_process_jax_distributed_run_matches_single_process(tmp_path):
    """Two CPU processes joined by jax.distributed (one device each, gloo collectives)
    train PPO with checkpoints to the parameters of one process alone; IL with a DAgger
    round and the policy export run over both processes too."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [subprocess.Popen([sys.executable, DRIVER, "distributed", str(tmp_path), str(port), str(rank), "2"],
                              env=_env(1), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for rank in range(2)]  # fmt: skip
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(log[-3000:] for log in logs)
    res = json.loads((tmp_path / "result.json").read_text())
    assert res["processes"] == 2 and res["devices"] == 2
    assert res["distributed"] < TOL, res
    assert res["il_policy"] == 0.0, res  # IL, DAgger and the export also run over the processes


def test_devices_key_is_validated_on_load():
    assert tiny_config("train.devices=4").train.devices == "4"
    assert tiny_config("train.devices=all").train.devices == "all"
    with pytest.raises(ConfigError, match="'train.devices' \\(3\\) must divide 'ppo.num_envs' \\(64\\)"):
        tiny_config("train.devices=3")
    with pytest.raises(ConfigError, match="'train.devices' is 'many'"):
        tiny_config("train.devices=many")
    with pytest.raises(ValueError, match="only 1 device"):
        from agents.sharding import resolve_devices

        resolve_devices("64", 64)


def test_multi_process_settings_from_environment(monkeypatch):
    train = tiny_config().train
    assert distributed_settings(train)["num_processes"] == 1
    monkeypatch.setenv("JAX_NUM_PROCESSES", "2")
    monkeypatch.setenv("JAX_PROCESS_ID", "1")
    with pytest.raises(ValueError, match="coordinator"):
        distributed_settings(train)
    monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "host0:1234")
    assert distributed_settings(train) == {"coordinator_address": "host0:1234", "num_processes": 2, "process_id": 1}
    # config keys win over the environment
    keyed = tiny_config("train.num_processes=4", "train.process_id=3", "train.coordinator_address=h:1").train
    assert distributed_settings(keyed) == {"coordinator_address": "h:1", "num_processes": 4, "process_id": 3}
