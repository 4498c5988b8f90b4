"""RAD metrics per DAA behaviour: split per-episode metrics by the adversary each
episode met and aggregate every group, plus the overall row."""

from __future__ import annotations

import numpy as np

from jaxsim import metrics as met
from jaxsim.daa.params import BEHAVIOUR_NAMES


def metrics_by_behaviour(episodes: dict, behaviour_ids, include_empty: bool = False) -> dict[str, dict[str, float]]:
    """Behaviour name -> `jaxsim.metrics.aggregate` row, plus "overall" (first).

    Args:
      episodes: per-episode values from `jaxsim.metrics.finalize`, each an array (E,).
      behaviour_ids: (E,) int `Behaviour` each episode played; pass the effective one
        (`state.adv.behaviour`, keep_log when the episode fell back to plain).
      include_empty: also list behaviours with no episode (their row is all NaN, Episodes 0).
    """
    ids = np.asarray(behaviour_ids).ravel()
    ep = {k: np.asarray(v).ravel() for k, v in episodes.items()}
    n = len(ep["dynamic_collision"])
    if len(ids) != n:
        raise ValueError(f"behaviour_ids has {len(ids)} entries but episodes has {n}")
    rows = {"overall": met.aggregate(ep)}
    for code, name in enumerate(BEHAVIOUR_NAMES):
        m = ids == code
        if m.any():
            rows[name] = met.aggregate({k: v[m] for k, v in ep.items()})
        elif include_empty:
            rows[name] = {c: float("nan") for c in met.TABLE_COLUMNS} | {"Episodes": 0.0}
    unknown = set(np.unique(ids).tolist()) - set(range(len(BEHAVIOUR_NAMES)))
    if unknown:
        raise ValueError(f"unknown behaviour id(s) {sorted(unknown)}; known: {dict(enumerate(BEHAVIOUR_NAMES))}")
    return rows
