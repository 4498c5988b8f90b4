"""RAD's closed-loop metrics: per-episode accumulators carried in the env state, and the
aggregation over episodes into the table RAD reports.

An episode ends in at most one event; when several fire at the same step the first of
dynamic collision, static collision, position deviation, heading deviation counts, so
CR = DCR + SCR and DR = PDR + HDR hold exactly.

CR counts every contact (RAD's definition). Beside it, nuPlan-style at-fault numbers
(`jaxsim.events.CollisionClass`): AtFaultDCR = dynamic collisions classed as the ego's
fault, AtFaultCR = AtFaultDCR + SCR (a static collision is always the ego's fault).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxsim.events import CollisionClass, Events

# Column order of RAD's table, then our extras.
RAD_COLUMNS = ("CR", "DCR", "SCR", "DR", "PDR", "HDR", "ADD", "LongJerk", "LatJerk")
EXTRA_COLUMNS = ("RouteCompletion", "Episodes")
AT_FAULT_COLUMNS = ("AtFaultCR", "AtFaultDCR")
# printed tables: CR and at-fault CR side by side, then the rest of RAD's columns
TABLE_COLUMNS = (
    RAD_COLUMNS[:1] + AT_FAULT_COLUMNS[:1] + RAD_COLUMNS[1:2] + AT_FAULT_COLUMNS[1:] + RAD_COLUMNS[2:] + EXTRA_COLUMNS
)

NO_EVENT, DYNAMIC, STATIC, POSITION, HEADING = 0, 1, 2, 3, 4


@struct.dataclass
class EpisodeMetrics:
    """Running sums for one episode (all float32 () except `event` int32 ())."""

    steps: jnp.ndarray
    sum_route_distance: jnp.ndarray  # for ADD (steps before any event)
    sum_abs_long_jerk: jnp.ndarray
    sum_abs_lat_jerk: jnp.ndarray
    jerk_steps: jnp.ndarray  # steps where jerk is defined (needs two previous accelerations)
    route_completion: jnp.ndarray  # fraction of the reference path's length covered
    event: jnp.ndarray  # NO_EVENT, DYNAMIC, STATIC, POSITION, HEADING
    collision_class: jnp.ndarray  # int32 `CollisionClass` of the ending dynamic collision (NONE otherwise)

    @classmethod
    def zeros(cls) -> "EpisodeMetrics":
        z, i0 = jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32)
        return cls(z, z, z, z, z, z, i0, i0)


def event_code(ev: Events) -> jnp.ndarray:
    """The single event an episode ends with (priority order), or NO_EVENT."""
    return jnp.select(
        [ev.dynamic_collision, ev.static_collision, ev.position_deviation, ev.heading_deviation],
        [DYNAMIC, STATIC, POSITION, HEADING],
        NO_EVENT,
    ).astype(jnp.int32)


def update(m: EpisodeMetrics, ev: Events, long_jerk, lat_jerk, jerk_valid, completion) -> EpisodeMetrics:
    """Fold one step into the running sums. ADD counts only steps before an event."""
    code = event_code(ev)
    clean = code == NO_EVENT
    return EpisodeMetrics(
        steps=m.steps + 1.0,
        sum_route_distance=m.sum_route_distance + jnp.where(clean, ev.route_distance, 0.0),
        sum_abs_long_jerk=m.sum_abs_long_jerk + jnp.where(jerk_valid, jnp.abs(long_jerk), 0.0),
        sum_abs_lat_jerk=m.sum_abs_lat_jerk + jnp.where(jerk_valid, jnp.abs(lat_jerk), 0.0),
        jerk_steps=m.jerk_steps + jerk_valid.astype(jnp.float32),
        route_completion=jnp.maximum(m.route_completion, completion),
        event=code,
        collision_class=jnp.where(code == DYNAMIC, ev.collision_class, CollisionClass.NONE).astype(jnp.int32),
    )


def finalize(m: EpisodeMetrics) -> dict:
    """Per-episode values (jnp scalars): event shares as 0/1 plus the averages."""
    clean_steps = m.steps - (m.event != NO_EVENT).astype(jnp.float32)
    return {
        "dynamic_collision": (m.event == DYNAMIC).astype(jnp.float32),
        "static_collision": (m.event == STATIC).astype(jnp.float32),
        "position_deviation": (m.event == POSITION).astype(jnp.float32),
        "heading_deviation": (m.event == HEADING).astype(jnp.float32),
        "at_fault_collision": ((m.event == DYNAMIC) & (m.collision_class >= CollisionClass.FRONT)).astype(jnp.float32),
        "add": m.sum_route_distance / jnp.maximum(clean_steps, 1.0),
        "long_jerk": m.sum_abs_long_jerk / jnp.maximum(m.jerk_steps, 1.0),
        "lat_jerk": m.sum_abs_lat_jerk / jnp.maximum(m.jerk_steps, 1.0),
        "route_completion": m.route_completion,
        "steps": m.steps,
    }


def aggregate(episodes: dict) -> dict[str, float]:
    """RAD table row from per-episode values (each an array over episodes)."""
    e = {k: np.asarray(v, dtype=np.float64) for k, v in episodes.items()}
    n = len(e["dynamic_collision"])
    if n == 0:
        raise ValueError("aggregate needs at least one episode")
    dcr, scr = e["dynamic_collision"].mean(), e["static_collision"].mean()
    pdr, hdr = e["position_deviation"].mean(), e["heading_deviation"].mean()
    af = e["at_fault_collision"].mean() if "at_fault_collision" in e else float("nan")
    return {
        "CR": dcr + scr,
        "AtFaultCR": af + scr,
        "AtFaultDCR": af,
        "DCR": dcr,
        "SCR": scr,
        "DR": pdr + hdr,
        "PDR": pdr,
        "HDR": hdr,
        "ADD": e["add"].mean(),
        "LongJerk": e["long_jerk"].mean(),
        "LatJerk": e["lat_jerk"].mean(),
        "RouteCompletion": e["route_completion"].mean(),
        "Episodes": float(n),
    }


def markdown_table(rows: dict[str, dict[str, float]]) -> str:
    """Rows name -> aggregate() dict as a Markdown table in RAD's column order."""
    cols = TABLE_COLUMNS
    lines = ["| Method | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, row in rows.items():
        cells = [f"{int(row[c])}" if c == "Episodes" else f"{row[c]:.3f}" for c in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
