"""Closed-loop evaluation of learned policies over several seeds in one compiled program.

`agents.evaluation.evaluate` runs one policy with shared env params; learned policies
need more: per-episode `EnvParams` (each DAA episode its own adversary knobs) and every
seed's parameters at once. `evaluate_learned` vmaps the same frozen-after-done rollout
over seeds and episodes, then aggregates with `jaxsim.metrics.aggregate` per seed.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from agents import policies as pol
from jaxsim import metrics as met
from jaxsim.wrappers import VmapWrapper, params_axes


@functools.lru_cache(maxsize=16)
def _compiled(env, apply, discrete: bool, num_episodes: int, num_steps: int):
    venv = VmapWrapper(env, num_episodes, batched_params=True)

    def one_seed(net_params, env_params, ids, key):
        k_reset, k_run = jax.random.split(key)
        obs, state = venv.reset_to(k_reset, env_params, ids)
        done = jnp.zeros((num_episodes,), bool)

        def body(carry, k):
            obs, state, done = carry
            action = pol.to_env_action(pol.mode(apply(net_params, obs)), env_params.dynamics, discrete)
            obs2, state2, _, term, trunc, _ = venv.step(k, state, action, env_params)
            keep = lambda new, old: jnp.where(done.reshape((-1,) + (1,) * (new.ndim - 1)), old, new)  # noqa: E731
            return (keep(obs2, obs), jax.tree.map(keep, state2, state), done | term | trunc), None

        (_, state, _), _ = jax.lax.scan(body, (obs, state, done), jax.random.split(k_run, num_steps))
        return jax.vmap(met.finalize)(state.metrics)

    return jax.jit(jax.vmap(one_seed, in_axes=(0, None, None, None)))


def rollout_learned(env, network, seed_params, env_params, scenario_ids, key) -> dict:
    """Per-episode metrics (dict of (S, E) numpy arrays) for S seeds' params (leading axis)
    on E episodes; `env_params` batched over the E episodes (see `agents.adversaries`)."""
    ids = jnp.asarray(scenario_ids, jnp.int32)
    steps = -(-(env_params.bank.num_steps - 1) // env.config.substeps)
    fn = _compiled(env, network.apply, network.discrete, int(ids.shape[0]), int(steps))
    return jax.tree.map(np.asarray, fn(seed_params, env_params, ids, key))


@functools.lru_cache(maxsize=16)
def _compiled_scripted(env, policy, num_episodes: int, num_steps: int):
    venv = VmapWrapper(env, num_episodes, batched_params=True)

    def run(env_params, ids, key):
        k_reset, k_run = jax.random.split(key)
        obs, state = venv.reset_to(k_reset, env_params, ids)
        done = jnp.zeros((num_episodes,), bool)
        axes = (0, 0, 0, params_axes(env_params, True))

        def body(carry, k):
            obs, state, done = carry
            k_act, k_step = jax.random.split(k)
            action = jax.vmap(policy, in_axes=axes)(jax.random.split(k_act, num_episodes), obs, state, env_params)
            obs2, state2, _, term, trunc, _ = venv.step(k_step, state, action, env_params)
            keep = lambda new, old: jnp.where(done.reshape((-1,) + (1,) * (new.ndim - 1)), old, new)  # noqa: E731
            return (keep(obs2, obs), jax.tree.map(keep, state2, state), done | term | trunc), None

        (_, state, _), _ = jax.lax.scan(body, (obs, state, done), jax.random.split(k_run, num_steps))
        return jax.vmap(met.finalize)(state.metrics)

    return jax.jit(run)


def rollout_scripted(env, policy, env_params, scenario_ids, key) -> dict:
    """Per-episode metrics (dict of (1, E) numpy arrays, a seed axis of one) of a per-env
    scripted `policy(key, obs, state, params)` (agents.baselines) with `env_params`
    batched over the E episodes, as `rollout_learned` does for networks."""
    ids = jnp.asarray(scenario_ids, jnp.int32)
    steps = -(-(env_params.bank.num_steps - 1) // env.config.substeps)
    fn = _compiled_scripted(env, policy, int(ids.shape[0]), int(steps))
    return jax.tree.map(lambda x: np.asarray(x)[None], fn(env_params, ids, key))


def condition_blocks(heldout_params, behaviours, key) -> list:
    """The held-out suite as [(env params batched over episodes, reps, [(row, slice)])]:
    log replay, then every DAA behaviour in one block (one compile, one rollout). The
    episodes of a DAA block are `reps` copies of the scenario ids, behaviour j's DAA
    knobs drawn with `fold_in(key, j)`. Shared by learned and scripted evaluation so
    both see the same adversaries."""
    from agents import adversaries

    n = heldout_params.bank.num_scenarios
    blocks = [(adversaries.with_daa(heldout_params, n, (), key), 1, [("log-replay", slice(None))])]
    if behaviours:
        parts = [adversaries.with_daa(heldout_params, n, (b,), jax.random.fold_in(key, j)) for j, b in enumerate(behaviours)]
        rows = [(b, slice(j * n, (j + 1) * n)) for j, b in enumerate(behaviours)] + [("daa-all", slice(None))]
        blocks.append((adversaries.stack_params(parts), len(behaviours), rows))
    return blocks


def evaluate_suite(rollout, heldout_params, behaviours, key) -> dict:
    """{row: aggregate_seeds(...)} of `rollout(env_params, scenario_ids, key) -> (S, E)
    episodes` over `condition_blocks` (rows: log-replay, each behaviour, daa-all)."""
    ids = np.arange(heldout_params.bank.num_scenarios)
    out = {}
    for env_p, reps, rows in condition_blocks(heldout_params, behaviours, key):
        eps = rollout(env_p, np.tile(ids, reps), key)
        for row, sl in rows:
            out[row] = aggregate_seeds(eps, sl)
    return out


def aggregate_seeds(episodes: dict, index=slice(None)) -> dict:
    """{"mean": row, "std": row, "seeds": [row, ...]} over the seed axis of (S, E) arrays,
    keeping episodes `index` (e.g. one behaviour's block)."""
    rows = [met.aggregate({k: v[s][index] for k, v in episodes.items()}) for s in range(len(episodes["steps"]))]
    keys = rows[0].keys()
    return {
        "mean": {k: float(np.mean([r[k] for r in rows])) for k in keys},
        "std": {k: float(np.std([r[k] for r in rows])) for k in keys},
        "seeds": rows,
    }


def evaluate_checkpoint(directory: str, bank, daa: str = "none", seed: int = 0) -> dict:
    """RAD rows {"<policy> [<condition>]": seed-mean row} for a policy directory or a run
    directory (its policy_il / policy_rl). daa: "none", "all" or one behaviour name."""
    import os

    from agents import adversaries
    from agents.checkpoint import POLICY_META, load_policy
    from agents.train_config import DAA_BEHAVIOURS
    from jaxsim.env import DrivingEnv

    if os.path.exists(os.path.join(directory, POLICY_META)):
        dirs = {os.path.basename(os.path.normpath(directory)): directory}
    else:
        dirs = {name: os.path.join(directory, f"policy_{name.lower()}") for name in ("IL", "RL")}
        dirs = {k: v for k, v in dirs.items() if os.path.exists(os.path.join(v, POLICY_META))}
    if not dirs:
        raise FileNotFoundError(f"{directory} holds no policy ({POLICY_META}, policy_il/ or policy_rl/)")
    if daa not in ("none", "all") + DAA_BEHAVIOURS:
        raise ValueError(f"--daa is {daa!r}; allowed: none, all, {', '.join(DAA_BEHAVIOURS)}")
    conditions = [("log-replay", ())]
    if daa != "none":
        if not adversaries.daa_available():
            raise ValueError("--daa needs jaxsim.daa")
        conditions += [(b, (b,)) for b in (DAA_BEHAVIOURS if daa == "all" else (daa,))]
    n = bank.num_scenarios
    key = jax.random.PRNGKey(seed)
    rows = {}
    for name, d in dirs.items():
        network, params, meta, cfg = load_policy(d)
        if not meta.get("seeds", 0):
            params = jax.tree.map(lambda x: x[None], params)
        env = DrivingEnv(cfg.env)
        base = env.default_params(bank)
        for j, (cond, beh) in enumerate(conditions):
            env_p = adversaries.with_daa(base, n, beh, jax.random.fold_in(key, j))
            eps = rollout_learned(env, network, params, env_p, np.arange(n), key)
            rows[f"{name} [{cond}]"] = aggregate_seeds(eps)
    return rows
