"""`reconrl recon train-restorer` on a tiny procedural scene: JSON, checkpoint, cache and resume."""

import json

import pytest
import torch

pytest.importorskip("diffusers")
from agents.cli import main  # noqa: E402
from render_bridge.recon.restorer import DriveRestorer  # noqa: E402

TINY = ["--num", "1", "--width", "32", "--height", "16", "--stride", "8", "--max-frames", "6", "--gaussians", "2000",
        "--fit-iters", "10", "--max-points", "1000", "--no-progress"]  # fmt: skip


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_train_restorer_cli_resumes_and_refuses_heldout(tmp_path, capsys):
    out, js = tmp_path / "restorer", tmp_path / "t.json"
    args = ["recon", "train-restorer", "--mode", "paper", "--work", str(tmp_path / "w"), "--out", str(out), "--split", "train",
            "--batch-size", "2", "--channels", "8,16", "--sample-steps", "2", "--json", str(js)] + TINY  # fmt: skip
    assert main(args + ["--steps", "3"]) == 0
    first = json.loads(js.read_text())
    assert first["pairs"] == 2 * 6 and first["pair_kinds"] == ["iters0.1", "sparse4"] and first["steps"] == 3
    assert "capture_s" in first["timings"] and "pairs_paper_s" in first["timings"]
    assert main(args + ["--steps", "5"]) == 0  # resumes the restorer; captures and pairs come from the cache
    second = json.loads(js.read_text())
    assert second["steps"] == 5 and len(second["losses"]) == 2 and second["timings"] == {}
    assert DriveRestorer.load(str(out), image_size=(16, 32)).step == 5
    held = [a if a != "train" else "heldout" for a in args]
    assert main(held + ["--steps", "5"]) == 2
    assert "train split only" in capsys.readouterr().err
    # a wall-clock budget stops training cleanly with a checkpoint; log lines come without progress bars
    assert main(args + ["--steps", "100000", "--max-seconds", "0.5", "--log-every", "1"]) == 0
    third = json.loads(js.read_text())
    assert third["stopped_early"] and 5 < third["steps"] < 100000 and third["steps_asked"] == 100000
    assert DriveRestorer.load(str(out), image_size=(16, 32)).step == third["steps"]
    out_text = capsys.readouterr().out
    assert f"[restorer] step {third['steps']}/100000" in out_text and "max_seconds=0.5 reached" in out_text


def test_prepare_shares_captures_fits_and_pairs(tmp_path):
    """prepare builds a scene's capture, plain fit (+ checkpoint) and pairs once; train-restorer then only reads them."""
    work = str(tmp_path / "w")
    common = ["--work", work, "--split", "train"] + TINY
    assert main(["recon", "prepare", "--pairs", "paper,oracle", "--json", str(tmp_path / "p.json")] + common) == 0
    prep = json.loads((tmp_path / "p.json").read_text())
    assert {"capture_s", "fit_s", "pairs_paper_s", "pairs_oracle_s"} <= set(prep["timings"])
    (scene,) = (tmp_path / "w" / "scenes").iterdir()
    assert (scene / "plain_it10_ckpt").is_dir() and len(list(scene.glob("pairs_*.npz"))) == 2
    for mode in ("paper", "oracle"):
        js = tmp_path / f"t_{mode}.json"
        assert main(["recon", "train-restorer", "--mode", mode, "--out", str(tmp_path / mode), "--steps", "2",
                     "--batch-size", "2", "--channels", "8,16", "--json", str(js)] + common) == 0  # fmt: skip
        assert json.loads(js.read_text())["timings"] == {}  # nothing rebuilt
    held = [a if a != "train" else "heldout" for a in common]
    assert main(["recon", "prepare", "--pairs", "paper"] + held) == 2
    # --cached-only skips what phase A of the GPU script did not finish instead of building it (here: everything)
    assert main(["recon", "eval-restore", "--cached-only"] + held) == 2
