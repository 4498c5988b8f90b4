"""Closed-loop evaluation: run a policy on given scenarios, one episode each, and report
RAD's metrics.

`policy(key, obs, state, params) -> action` is written per env (scripted baselines in
`agents.baselines`, learned policies in `agents.policies`); `evaluate` vmaps it over
the episodes and runs every step of every episode in one jitted `lax.scan`. Finished
episodes are frozen, so each contributes exactly its own steps.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim import metrics as met
from jaxsim.wrappers import VmapWrapper, params_axes


def rollout_metrics(env, params, policy, scenario_ids, key, num_steps: int | None = None):
    """Per-episode metrics (dict of (E,) arrays, see `jaxsim.metrics.finalize`).

    Args:
      env: a DrivingEnv (not auto-resetting). params: EnvParams (shared by all episodes).
      scenario_ids: (E,) int bank indices, one episode each.
      num_steps: steps to simulate (default: the bank's T - 1, enough for any episode).
    """
    ids = jnp.asarray(scenario_ids, jnp.int32)
    venv = VmapWrapper(env, int(ids.shape[0]))
    steps = int(num_steps or params.bank.num_steps - 1)
    policy_axes = (0, 0, 0, params_axes(params, False))

    @jax.jit
    def run(key, params):
        k_reset, k_run = jax.random.split(key)
        obs, state = venv.reset_to(k_reset, params, ids)
        done = jnp.zeros(ids.shape, bool)

        def body(carry, k):
            obs, state, done = carry
            k_act, k_step = jax.random.split(k)
            action = jax.vmap(policy, in_axes=policy_axes)(jax.random.split(k_act, ids.shape[0]), obs, state, params)
            obs2, state2, _, term, trunc, _ = venv.step(k_step, state, action, params)
            keep = lambda new, old: jnp.where(done.reshape((-1,) + (1,) * (new.ndim - 1)), old, new)  # noqa: E731
            state = jax.tree.map(keep, state2, state)
            obs = keep(obs2, obs)
            return (obs, state, done | term | trunc), None

        (_, state, _), _ = jax.lax.scan(body, (obs, state, done), jax.random.split(k_run, steps))
        return jax.vmap(met.finalize)(state.metrics)

    return jax.tree.map(np.asarray, run(key, params))


def evaluate(env, params, policy, scenario_ids, key, chunk: int = 1024) -> tuple[dict, dict]:
    """(aggregate RAD row, per-episode arrays) over `scenario_ids`, `chunk` episodes at a time."""
    ids = np.asarray(scenario_ids)
    if ids.size == 0:
        raise ValueError("evaluate needs at least one scenario id")
    parts = []
    for start in range(0, ids.size, chunk):
        parts.append(rollout_metrics(env, params, policy, ids[start : start + chunk], jax.random.fold_in(key, start)))
    episodes = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return met.aggregate(episodes), episodes
