"""benchmarks/recon.py (what benchmarks/gpu_recon.sh runs on the GPU) at toy size on the CPU:
every part runs and writes the JSON the GPU run reports."""

import json

import pytest


@pytest.mark.slow
def test_recon_benchmark_tiny_runs_every_part(tmp_path):
    from benchmarks.recon import main

    assert main(["--out", str(tmp_path), "--tiny", "--scenes", "1", "--part", "all"]) == 0
    table = json.loads((tmp_path / "table.json").read_text())
    assert set(table["table"]) == {"0", "1", "cousins"} and table["table"]["0"]["scenes"] == 1
    assert table["gaussians_mean"] > 0 and table["fit_seconds_scene0"] > 0
    assert table["env_recon"]["frames_per_s"] > 0 and table["env_procedural"]["frames_per_s"] > 0
    assert (tmp_path / "scene_0" / "grid_offset_1m.png").exists()
    sky = json.loads((tmp_path / "sky.json").read_text())
    assert sky["fit_torch"]["sky_backend"] == "torch" and sky["lookup_fwd_bwd_ms_torch"] > 0
