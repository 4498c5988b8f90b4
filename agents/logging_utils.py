"""Training logs: CSV and JSONL files, optional TensorBoard, and a progress line.

`RunLogger(out_dir, tensorboard=False)` appends one row per call to `log(phase, step,
metrics)` to `log.jsonl` and `<phase>.csv` (columns fixed by the first row of each
phase). `Progress` prints a single refreshing line with steps/s and ETA to stderr.

Durability: every row is flushed and fsync'ed before `log` returns, and the runner logs
a chunk's row before it checkpoints the chunk, so a kill never loses a finished chunk's
rows. A resumed phase calls `rewind(phase, step)` first, which drops that phase's rows
past the checkpoint it resumes from (rows of chunks that will run again), so the logs
hold each chunk exactly once. JSON rows are strict JSON: NaN/inf are written as null.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time

import numpy as np

from jaxsim.io_utils import dumps_json


def _scalar(v):
    a = np.asarray(v)
    return float(a.mean()) if a.size else float("nan")


def summary_writer(logdir: str):
    """A TensorBoard event writer: tensorboardX when installed, else torch's
    `torch.utils.tensorboard` (needs the `tensorboard` package; the GPU image has torch
    and tensorboard but not tensorboardX)."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:  # optional dependency: say which packages would do
            raise ValueError(
                "log.tensorboard needs tensorboardX (pip install tensorboardX), or torch with the 'tensorboard' package"
            ) from err
    return SummaryWriter(logdir)


class RunLogger:
    def __init__(self, out_dir: str, tensorboard: bool = False):
        self.out_dir = out_dir
        os.makedirs(out_dir, exist_ok=True)
        self.jsonl = open(os.path.join(out_dir, "log.jsonl"), "a")
        self.tb = None
        if tensorboard:
            self.tb = summary_writer(os.path.join(out_dir, "tb"))

    def log(self, phase: str, step: int, metrics: dict) -> dict:
        """Record seed-averaged scalars (arrays with a seed axis are averaged, std kept as `_std`)."""
        row = {"phase": phase, "step": int(step), "time": time.time()}
        for k, v in metrics.items():
            a = np.asarray(v, dtype=np.float64)
            row[k] = _scalar(a)
            if a.ndim and a.size > 1:
                row[k + "_std"] = float(a.std())
        self.jsonl.write(dumps_json(row) + "\n")
        self.jsonl.flush()
        os.fsync(self.jsonl.fileno())
        path = os.path.join(self.out_dir, f"{phase}.csv")
        new = not os.path.exists(path) or os.path.getsize(path) == 0
        with open(path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(row), extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)
            f.flush()
            os.fsync(f.fileno())
        if self.tb is not None:
            for k, v in row.items():
                if k not in ("phase", "step", "time"):
                    self.tb.add_scalar(f"{phase}/{k}", v, int(step))
            self.tb.flush()
        return row

    def rewind(self, phase: str, step: int) -> int:
        """Drop `phase`'s rows with a step after `step` (chunks a resumed run repeats).

        Rewrites log.jsonl and `<phase>.csv` atomically; returns the number of rows dropped.
        Lines that are not complete JSON (a kill mid-write) are dropped too.
        """
        from jaxsim.io_utils import write_text

        dropped = 0
        path = os.path.join(self.out_dir, "log.jsonl")
        self.jsonl.close()
        try:
            with open(path) as f:
                lines = f.readlines()
            keep = []
            for line in lines:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    dropped += 1
                    continue
                if row.get("phase") == phase and row.get("step", 0) > step:
                    dropped += 1
                    continue
                keep.append(line if line.endswith("\n") else line + "\n")
            if len(keep) != len(lines):
                write_text(path, "".join(keep))
        finally:
            self.jsonl = open(path, "a")
        csv_path = os.path.join(self.out_dir, f"{phase}.csv")
        if os.path.exists(csv_path):
            with open(csv_path, newline="") as f:
                rows = list(csv.reader(f))
            if rows:
                header, body = rows[0], rows[1:]
                col = header.index("step") if "step" in header else None
                kept = [
                    r
                    for r in body
                    if col is not None and len(r) == len(header) and r[col].isdigit() and int(r[col]) <= step
                ]
                if len(kept) != len(body):
                    dropped += len(body) - len(kept)
                    import io

                    buf = io.StringIO()
                    w = csv.writer(buf)
                    w.writerow(header)
                    w.writerows(kept)
                    write_text(csv_path, buf.getvalue())
        return dropped

    def close(self) -> None:
        self.jsonl.close()
        if self.tb is not None:
            self.tb.close()


class Progress:
    """`[ppo] 12/40  3.1M env-steps  52.3k env-steps/s  ETA 54s  loss=..` on one line."""

    def __init__(self, phase: str, total: int, unit: str, enabled: bool = True, stream=sys.stderr):
        self.phase, self.total, self.unit, self.enabled, self.stream = phase, total, unit, enabled, stream
        self.t0 = None
        self.done0 = 0

    def update(self, done: int, units_done: float, extra: str = "") -> None:
        now = time.perf_counter()
        if self.t0 is None:  # the first chunk includes compilation: rate starts after it
            self.t0, self.done0, self.units0 = now, done, units_done
        rate = (units_done - self.units0) / max(now - self.t0, 1e-9) if done > self.done0 else float("nan")
        per_chunk = (now - self.t0) / max(done - self.done0, 1)
        eta = (self.total - done) * per_chunk if done > self.done0 else float("nan")
        line = (f"[{self.phase}] {done}/{self.total}  {_human(units_done)} {self.unit}  "
                f"{_human(rate)} {self.unit}/s  ETA {eta:.0f}s  {extra}")  # fmt: skip
        if self.enabled:
            end = "\n" if done >= self.total else ""
            self.stream.write("\r" + line[:150].ljust(150) + end)
            self.stream.flush()

    def rate(self, units_done: float) -> float:
        if self.t0 is None:
            return float("nan")
        return (units_done - self.units0) / max(time.perf_counter() - self.t0, 1e-9)


def _human(x: float) -> str:
    if x != x:  # NaN
        return "-"
    for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.1f}{suf}"
    return f"{x:.0f}"
