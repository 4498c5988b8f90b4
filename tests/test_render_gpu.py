"""GPU checks of the render bridge (skipped without CUDA): gsplat parity, zero copy, throughput.

Run on the GPU machine: XLA_PYTHON_CLIENT_PREALLOCATE=false pytest -m gpu tests/test_render_gpu.py
"""

import os
import sys

import pytest

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def check():
    pytest.importorskip("gsplat")
    import jax

    if jax.default_backend() != "gpu":
        pytest.skip("JAX has no GPU backend here")
    from benchmarks import gpu_render_check

    return gpu_render_check


def test_gsplat_matches_reference_splatter(check):
    res = check.parity(gaussians=20_000, size=128, rig_name="nuscenes6")
    print(res)
    assert res["parity_psnr_db"] >= check.PARITY_PSNR_DB, res


def test_dlpack_is_zero_copy_both_ways(check):
    res = check.zero_copy()
    print(res)
    assert res["jax_to_torch_same_pointer"] and res["jax_to_torch_values_equal"]
    assert res["torch_to_jax_same_pointer"] and res["torch_to_jax_on_gpu"]
    assert res["renderer_output_same_pointer"] and res["renderer_output_shape"] == [4, 1, 64, 64, 3]


def test_camera_env_throughput_smoke(check):
    """A short run of the benchmark's camera env at 128x128, 200k Gaussians per scene."""
    import argparse

    from benchmarks import render as bench

    args = argparse.Namespace(backend="gsplat", rig="front", max_batch=256, env_envs=256, env_size=128,
                              env_gaussians=200_000, env_steps=5)  # fmt: skip
    res = bench.camera_env(args, check.demo_bank(4))
    print(res)
    assert res["env_backend"] == "gsplat" and res["env_steps_per_s"] > 100
