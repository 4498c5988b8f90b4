"""Text of the import report (`reconrl scenarios import-scenarionet`) and a progress line."""

from __future__ import annotations

import os
import sys


def progress_line(stream=sys.stderr):
    """A callable(done, total, path) drawing `[done/total] file` on one terminal line."""
    tty = stream.isatty()

    def show(done: int, total: int, path: str) -> None:
        if not tty:  # logs and pipes get one line at the end, not a carriage-return animation
            if done == total:
                stream.write(f"read {total} file(s)\n")
            return
        width = 24
        fill = int(width * done / max(total, 1))
        stream.write(f"\r[{'#' * fill}{'.' * (width - fill)}] {done}/{total} {os.path.basename(path)[:40]:40s}")
        if done == total:
            stream.write("\n")
        stream.flush()

    return show


def report_lines(summary: dict) -> list[str]:
    """One line per imported scene, one per skipped file, and the totals."""
    lines = [
        f"{'scene':<14} {'dataset':<18} {'clips':>5} {'agents':>6} {'lanes':>5} {'drift m':>8} "
        f"{'smooth m':>8} {'on road':>7} {'in lane':>7}"
    ]
    for r in summary["scene_reports"]:
        lines.append(
            f"{r['scene'][:14]:<14} {r['dataset'][:18]:<18} {r['clips']:>5} {r['agents_per_clip']:>6.1f} "
            f"{r['lanes']:>5} {r['drift_max_m']:>8.3f} {r['smooth_cross_max_m']:>8.3f} "
            f"{r['on_drivable']:>7.1%} {r['in_lane']:>7.1%}"
        )
    for r in summary["skipped"]:
        lines.append(f"skipped {r['file']}: {r['reason']}")
    lines.append(
        f"{summary['num_clips']} clips from {summary['scenes']} of {summary['files']} file(s); ego drift "
        f"max {summary['drift_max_m']:.3f} m; ego box on the drivable area {summary['on_drivable']:.1%} "
        f"and in a lane {summary['in_lane']:.1%} of steps; clipped control steps {summary['clipped_steps']}"
    )
    return lines
