"""Run one training phase (IL or PPO) in checkpointed chunks, resumable bit for bit.

A phase is a pytree state plus a jitted `chunk(state) -> (state, metrics)`. After every
chunk the whole state is saved (orbax), so a run killed at any point resumes from the
last finished chunk and, the computation being deterministic, ends with exactly the
parameters an uninterrupted run gets. A chunk's log row is written (and fsync'ed)
before its checkpoint, and a resumed phase first drops the rows of chunks past its
checkpoint, so the logs of a killed and resumed run hold every chunk exactly once.
A chunk whose state has non-finite `params` raises `DivergedError` (a ValueError: one
line from the CLI) instead of being checkpointed, exported and evaluated.
"""

from __future__ import annotations

import os
from typing import Callable

import jax
import numpy as np

from agents.checkpoint import TrainCheckpoints
from agents.logging_utils import Progress, RunLogger


class Interrupted(RuntimeError):
    """Raised when `stop_after` chunks have run (tests and time-limited jobs)."""


class DivergedError(ValueError):
    """The phase's parameters became NaN/inf; raised before that chunk is checkpointed."""


def _all_finite(tree) -> bool:
    leaves = [x for x in jax.tree.leaves(tree) if jax.numpy.issubdtype(jax.numpy.result_type(x), jax.numpy.floating)]
    return all(bool(jax.numpy.all(jax.numpy.isfinite(x))) for x in leaves)


def restore_finished_phase(ckpt_dir: str, state, num_chunks: int):
    """The state a phase ended with, when its checkpoints reach chunk `num_chunks`; else None.

    Lets a resumed run skip the data a finished phase alone needed (camera DAgger pairs).
    """
    if not os.path.isdir(ckpt_dir):
        return None
    ckpt = TrainCheckpoints(ckpt_dir)
    try:
        return ckpt.restore(state, num_chunks) if (ckpt.latest_step() or 0) >= num_chunks else None
    finally:
        ckpt.close()


def run_phase(
    name: str,
    ckpt_dir: str,
    state,
    chunk: Callable,
    num_chunks: int,
    units_per_chunk: float,
    unit: str,
    logger: RunLogger | None = None,
    progress: bool = True,
    stop_after: int | None = None,
    summary: Callable[[dict], str] | None = None,
):
    """Run chunks `[latest checkpoint, num_chunks)` of a phase; returns (state, last metrics, rate).

    `units_per_chunk` (e.g. env steps) feeds the progress line and the logged rate;
    `stop_after` raises `Interrupted` after that many chunks of this call.
    """
    ckpt = TrainCheckpoints(ckpt_dir)
    start = ckpt.latest_step() or 0
    if start:
        state = ckpt.restore(state, start)
    if logger is not None:
        logger.rewind(name, start)  # rows of chunks after the checkpoint will be written again
    bar = Progress(name, num_chunks, unit, enabled=progress)
    metrics: dict = {}
    rate = float("nan")
    try:
        for c in range(start, num_chunks):
            state, metrics = chunk(state)
            metrics = jax.tree.map(np.asarray, metrics)  # waits for the chunk
            params = getattr(state, "params", None)
            if params is not None and not _all_finite(params):  # never checkpoint, export or evaluate NaN
                raise DivergedError(f"{name}: the parameters became NaN/inf in chunk {c + 1} of {num_chunks} "
                                    f"(learning rate too high?); the last finite checkpoint is step {c} in {ckpt_dir}")  # fmt: skip
            units = (c + 1) * units_per_chunk
            bar.update(c + 1, units, summary(metrics) if summary else "")
            rate = bar.rate(units)
            if logger is not None:  # before the checkpoint: a kill in between repeats the chunk, never loses its row
                # metrics are (seeds, chunk_len) or (chunk_len,): log the chunk's last values
                last = {k: v[..., -1] if v.ndim else v for k, v in metrics.items()}
                logger.log(name, c + 1, {**last, f"{unit}_per_s": rate, unit: units})
            ckpt.save(c + 1, state)
            if stop_after is not None and c + 1 - start >= stop_after and c + 1 < num_chunks:
                raise Interrupted(f"{name}: stopped after chunk {c + 1} of {num_chunks}")
    finally:
        ckpt.close()
    return state, metrics, rate
