"""CTG diversity report and the `reconrl ctg stats` / `reconrl bench ctg` commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
from builders import bank_of
from test_ctg_scenes import straight_scene

from jaxsim.ctg import Cousins, Lateral, RejectReason, Speed
from jaxsim.ctg.stats import diversity_report, features, plot_report


def _arc(radius, speed=10.0, n=91, dt=0.1):
    """States (n, 4) on a left circle of `radius` from the origin heading +x."""
    s = speed * dt * np.arange(n)
    th = s / radius
    return np.stack([radius * np.sin(th), radius * (1 - np.cos(th)), th, np.full(n, speed)], -1).astype(np.float32)


def test_features_measure_curvature_and_lateral_displacement():
    states = np.stack([_arc(50.0), _arc(1e6)])
    f = features(states, np.array([81, 81]), np.array([0.1, 0.1]))
    n_steps = 80
    np.testing.assert_allclose(f["curvature"][:n_steps], 1 / 50.0, rtol=1e-3)
    np.testing.assert_allclose(f["curvature"][n_steps:], 0.0, atol=1e-5)
    np.testing.assert_allclose(f["lateral"], [50.0 * (1 - np.cos(80 / 50.0)), 0.0], atol=1e-2)
    assert f["speed"].shape == (162,)


def test_report_shows_the_straight_bias_shrink(tmp_path):
    bank = bank_of(straight_scene(), straight_scene())
    K = 3
    states = np.stack([np.stack([_arc(30.0), _arc(60.0), _arc(20.0)])] * 2)  # (2, K, 91, 4)
    reasons = np.array([[0, 0, int(RejectReason.LAT_ACCEL)], [0, int(RejectReason.COLLISION), 0]], np.int32)
    cousins = Cousins(
        states=states, controls=np.zeros((2, K, 90, 2), np.float32), route_len=np.full((2, K), 81, np.int32),
        reasons=reasons, lateral=np.full((2, K), int(Lateral.OFFSET), np.int32),
        speed=np.full((2, K), int(Speed.LOG), np.int32), branch=np.zeros((2, K), np.int32), num_steps=81,
    )  # fmt: skip
    report = diversity_report(bank, cousins)
    sb = report["straight_bias"]
    assert sb["logs"]["straight_step_fraction"] == 1.0 and sb["logs"]["small_lateral_fraction"] == 1.0
    # 4 accepted curved cousins + 2 straight logs
    assert sb["logs_plus_cousins"]["straight_step_fraction"] == pytest.approx(2 / 6)
    assert report["accepted_cousins"] == 4 and report["acceptance"]["rate"] == pytest.approx(4 / 6)
    assert report["acceptance"]["rejections"]["LAT_ACCEL"] == 1 and report["acceptance"]["rejections"]["COLLISION"] == 1
    for f in report["features"].values():
        assert len(f["logs"]) == len(f["bins"]) - 1
    json.dumps(report)
    plot_report(report, str(tmp_path / "s.png"))
    assert (tmp_path / "s.png").stat().st_size > 10_000


@pytest.mark.slow
def test_cli_stats_and_bench(tmp_path):
    from agents.cli import main

    out = tmp_path / "stats"
    assert main(["ctg", "stats", "--out", str(out), "--num", "4", "--k", "2"]) == 0
    report = json.loads((out / "ctg_stats.json").read_text())
    assert report["num_scenarios"] == 4 and (out / "ctg_stats.png").exists()
    bench = tmp_path / "bench.json"
    assert (
        main(["bench", "ctg", "--num-envs", "8", "--k", "2", "--scenarios", "4", "--iters", "1", "--json", str(bench)])
        == 0
    )
    result = json.loads(bench.read_text())
    assert result["cousins_per_call"] == 16 and result["cousins_per_s"] > 0


def test_cli_rejects_bad_arguments(capsys):
    from agents.cli import main

    assert main(["ctg", "stats", "--out", "/tmp/x", "--k", "0"]) == 2
    assert "--k must be >= 1" in capsys.readouterr().err


@pytest.mark.gpu
def test_gpu_sampler_matches_cpu():
    """On the GPU machine: the same key gives the same accept/reject decisions as on CPU."""
    import jax
    import jax.numpy as jnp

    from jaxsim.ctg import CTGConfig, sample_cousins
    from jaxsim.env import DrivingEnv, EnvConfig
    from jaxsim.procedural import generate_bank

    bank = generate_bank(8, split="train", seed=0)
    params = DrivingEnv(EnvConfig(obs="none")).default_params(bank)
    cfg = CTGConfig(num_cousins=8)
    idx = jnp.arange(8)
    gpu = jax.device_get(jax.jit(sample_cousins, static_argnames=("cfg",))(jax.random.PRNGKey(0), params, idx, cfg))
    cpu_dev = jax.devices("cpu")[0]
    with jax.default_device(cpu_dev):
        p_cpu = jax.device_put(params, cpu_dev)
        cpu = jax.device_get(jax.jit(sample_cousins, static_argnames=("cfg",))(jax.random.PRNGKey(0), p_cpu, idx, cfg))
    np.testing.assert_array_equal(gpu.lateral, cpu.lateral)
    agree = np.mean(gpu.reasons == cpu.reasons)
    assert agree > 0.95, agree  # limits are thresholds: float differences may flip a borderline cousin
    np.testing.assert_allclose(
        gpu.states[gpu.accepted & cpu.accepted], cpu.states[gpu.accepted & cpu.accepted], atol=1e-2
    )
