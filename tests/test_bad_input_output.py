"""Bad input: output paths, atomic writes, logs that survive a kill, strict JSON (issue 18, finding 8)."""

import csv
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents.cli import main
from agents.logging_utils import RunLogger
from agents.runner import run_phase
from jaxsim.io_utils import OutputPathError, atomic_write, check_output_file


def _strict(text):
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))


def test_bank_out_that_is_a_directory_fails_first_and_leaves_nothing(tmp_path, capsys):
    d = tmp_path / "banks"
    d.mkdir()
    assert main(["scenarios", "generate", "--num", "1", "--out", str(d)]) == 2
    assert "existing directory" in capsys.readouterr().err
    assert os.listdir(d) == [] and sorted(os.listdir(tmp_path)) == ["banks"]  # no temp file left


def test_missing_or_unwritable_parents_are_refused_before_work(tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("x")
    # --json under a missing folder: refused before generating anything
    assert main(["scenarios", "generate", "--num", "1", "--out", str(tmp_path / "b.npz"),
                 "--json", str(tmp_path / "nope" / "s.json")]) == 2  # fmt: skip
    assert "does not exist" in capsys.readouterr().err and not (tmp_path / "b.npz").exists()
    # a parent that is a file
    with pytest.raises(OutputPathError, match="not a directory"):
        check_output_file(f / "x.json", "--json")
    assert main(["eval", "--split", "heldout", "--num", "2", "--json", str(tmp_path / "nope" / "e.json")]) == 2
    assert "--json" in capsys.readouterr().err
    if os.geteuid() != 0:  # root may write anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        os.chmod(ro, 0o500)
        with pytest.raises(OutputPathError, match="not writable"):
            check_output_file(ro / "x.json", "--json")


def test_atomic_write_cleans_up_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as f:
            f.write("half")
            raise RuntimeError("killed mid-write")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["r.json"]
    with atomic_write(path) as f:
        f.write("new")
    assert path.read_text() == "new" and os.listdir(tmp_path) == ["r.json"]


class _Killed(BaseException):
    pass


def _phase(out, logger, kill_after_save_of=None, kill_before_save_of=None):
    """Four chunks of a tiny deterministic phase; optionally 'killed' around one save."""
    from agents import runner

    state0 = {"x": jnp.zeros((3,), jnp.float32)}
    chunk = jax.jit(
        lambda s: ({"x": s["x"] + 1.0}, {"loss": jnp.sum(s["x"]) + jnp.arange(2.0), "nan": jnp.full((2,), jnp.nan)})
    )
    real_save = runner.TrainCheckpoints.save

    def save(self, step, tree):
        if step == kill_before_save_of:
            raise _Killed()
        real_save(self, step, tree)
        if step == kill_after_save_of:
            raise _Killed()

    runner.TrainCheckpoints.save = save
    try:
        return run_phase("il", str(out / "ckpt"), state0, chunk, 4, 1, "steps", logger, progress=False)
    finally:
        runner.TrainCheckpoints.save = real_save


@pytest.mark.parametrize("where", ["after_save", "before_save"])
def test_a_kill_around_a_checkpoint_loses_and_duplicates_no_log_rows(tmp_path, where):
    kw = {"kill_after_save_of": 2} if where == "after_save" else {"kill_before_save_of": 2}
    logger = RunLogger(str(tmp_path))
    with pytest.raises(_Killed):
        _phase(tmp_path, logger, **kw)
    logger.close()  # the process is gone; a new one resumes
    logger = RunLogger(str(tmp_path))
    state, _, _ = _phase(tmp_path, logger)
    logger.close()
    np.testing.assert_array_equal(np.asarray(state["x"]), np.full(3, 4.0))
    rows = [_strict(line) for line in open(tmp_path / "log.jsonl")]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert rows[0]["nan"] is None  # NaN metrics are null, not a bare NaN token
    with open(tmp_path / "il.csv", newline="") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [1, 2, 3, 4]


def test_results_json_is_strict_even_with_nan(tmp_path):
    from agents.report import write_results

    write_results(
        {"config": {"seeds": 1}, "timing": {"total_s": 1.0}, "ppo_env_steps_per_s": float("nan")}, str(tmp_path)
    )
    data = _strict((tmp_path / "results.json").read_text())
    assert data["ppo_env_steps_per_s"] is None
    assert sorted(os.listdir(tmp_path)) == ["results.json", "results.md"]


def test_diverged_parameters_stop_the_phase_before_the_checkpoint(tmp_path):
    from flax import struct

    from agents.checkpoint import TrainCheckpoints
    from agents.runner import DivergedError

    @struct.dataclass
    class S:
        params: jnp.ndarray
        step: jnp.ndarray

    def chunk(s):
        step = s.step + 1
        return S(params=jnp.where(step >= 2, jnp.nan, s.params + 1.0), step=step), {"loss": jnp.zeros(1)}

    with pytest.raises(DivergedError, match="chunk 2 of 4") as err:
        run_phase(
            "ppo", str(tmp_path / "ck"), S(jnp.zeros(2), jnp.int32(0)), jax.jit(chunk), 4, 1, "steps", progress=False
        )
    assert "step 1" in str(err.value)
    assert TrainCheckpoints(str(tmp_path / "ck")).latest_step() == 1
