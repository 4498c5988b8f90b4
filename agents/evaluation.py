"""Closed-loop evaluation: run a policy on given scenarios, one episode each, and report
RAD's metrics.

`policy(key, obs, state, params) -> action` is written per env (scripted baselines in
`jaxsim.drivers`, learned policies in `agents.policies`); `evaluate` vmaps it over
the episodes and runs every step of every episode in one jitted `jaxsim.rollout.rollout`.
Finished episodes are frozen, so each contributes exactly its own steps.
"""

from __future__ import annotations

import jax
import numpy as np

from jaxsim import metrics as met
from jaxsim.rollout import episode_metrics, per_env_policy


def policy_episodes(env, params, policy, scenario_ids, key, num_steps: int | None = None):
    """Per-episode metrics (dict of (E,) arrays, see `jaxsim.metrics.finalize`).

    Args:
      env: a DrivingEnv (not auto-resetting). params: EnvParams (shared by all episodes).
      scenario_ids: (E,) int bank indices, one episode each.
      num_steps: steps to simulate (default: the bank's T - 1, enough for any episode).
    """
    ids = np.asarray(scenario_ids, np.int32)
    steps = int(num_steps or params.bank.num_steps - 1)

    @jax.jit
    def run(key, params):
        return episode_metrics(env, params, lambda venv: per_env_policy(policy, venv, params), ids, key, steps)

    return jax.tree.map(np.asarray, run(key, params))


def evaluate(env, params, policy, scenario_ids, key, chunk: int = 1024) -> tuple[dict, dict]:
    """(aggregate RAD row, per-episode arrays) over `scenario_ids`, `chunk` episodes at a time."""
    ids = np.asarray(scenario_ids)
    if ids.size == 0:
        raise ValueError("evaluate needs at least one scenario id")
    parts = []
    for start in range(0, ids.size, chunk):
        parts.append(policy_episodes(env, params, policy, ids[start : start + chunk], jax.random.fold_in(key, start)))
    episodes = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return met.aggregate(episodes), episodes
