"""Closed-loop evaluation of learned policies over several seeds in one compiled program.

`agents.evaluation.evaluate` runs one policy with shared env params; learned policies
need more: per-episode `EnvParams` (each DAA episode its own adversary knobs) and every
seed's parameters at once. `rollout_learned` vmaps the same frozen-after-done rollout
(`jaxsim.rollout`) over seeds and episodes; `evaluate_suite` runs the held-out suite
(log replay and DAA behaviours, `condition_blocks`) that `reconrl train` and
`reconrl eval --checkpoint` both report, and aggregates per seed.
"""

from __future__ import annotations

import functools

import jax
import numpy as np

from agents import policies as pol
from jaxsim import metrics as met
from jaxsim.rollout import episode_metrics, episode_steps, per_env_policy


def _greedy(apply, net_params, dynamics, discrete: bool):
    """The batched deterministic policy of a network (the mode of its action distribution)."""
    return lambda key, obs, state: pol.to_env_action(pol.mode(apply(net_params, obs)), dynamics, discrete)


@functools.lru_cache(maxsize=16)
def _compiled(env, apply, discrete: bool, num_steps: int):
    def one_seed(net_params, env_params, ids, key):
        policy = lambda venv: _greedy(apply, net_params, env_params.dynamics, discrete)  # noqa: E731
        return episode_metrics(env, env_params, policy, ids, key, num_steps, batched_params=True)

    return jax.vmap(one_seed, in_axes=(0, None, None, None))


def rollout_learned(env, network, seed_params, env_params, scenario_ids, key, mesh=None) -> dict:
    """Per-episode metrics (dict of (S, E) numpy arrays) for S seeds' params (leading axis)
    on E episodes; `env_params` batched over the E episodes (see `agents.adversaries`).
    mesh: shard the episodes over its devices when their number divides E (else, and
    without a mesh, one device)."""
    ids = np.asarray(scenario_ids, np.int32)
    fn = _compiled(env, network.apply, network.discrete, episode_steps(env, env_params))
    if mesh is None or ids.size % mesh.devices.size:
        return jax.tree.map(np.asarray, _jitted(fn)(seed_params, env_params, ids, key))
    from agents.sharding import env_params_shardings, env_sharded, put, replicated, tree_shardings

    rep = replicated(mesh)
    shardings = (tree_shardings(seed_params, rep), env_params_shardings(mesh, env_params), env_sharded(mesh), rep)
    args = put((seed_params, env_params, ids, key), shardings)
    out = _jitted(fn, mesh)(*args)  # per-episode metrics come back replicated (host-readable on every process)
    return jax.tree.map(np.asarray, out)


@functools.lru_cache(maxsize=16)
def _jitted(fn, mesh=None):
    """jit of a rollout; on a mesh its outputs are replicated (the input shardings come
    with the global arrays `put` built)."""
    if mesh is None:
        return jax.jit(fn)
    from agents.sharding import replicated

    return jax.jit(fn, out_shardings=replicated(mesh))


@functools.lru_cache(maxsize=16)
def _compiled_scripted(env, policy, num_steps: int):
    def run(env_params, ids, key):
        return episode_metrics(env, env_params, lambda venv: per_env_policy(policy, venv, env_params), ids, key,
                               num_steps, batched_params=True)  # fmt: skip

    return jax.jit(run)


def rollout_scripted(env, policy, env_params, scenario_ids, key) -> dict:
    """Per-episode metrics (dict of (1, E) numpy arrays, a seed axis of one) of a per-env
    scripted `policy(key, obs, state, params)` (`jaxsim.policies`) with `env_params`
    batched over the E episodes, as `rollout_learned` does for networks."""
    ids = np.asarray(scenario_ids, np.int32)
    fn = _compiled_scripted(env, policy, episode_steps(env, env_params))
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
        parts = [
            adversaries.with_daa(heldout_params, n, (b,), jax.random.fold_in(key, j)) for j, b in enumerate(behaviours)
        ]
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


def checkpoint_dirs(directory: str) -> dict:
    """{policy name: policy directory} for a policy directory or a run directory (its
    policy_il / policy_rl, named IL / RL as in the table `reconrl train` writes)."""
    import os

    from agents.checkpoint import POLICY_META

    if os.path.exists(os.path.join(directory, POLICY_META)):
        return {os.path.basename(os.path.normpath(directory)): directory}
    dirs = {name: os.path.join(directory, f"policy_{name.lower()}") for name in ("IL", "RL")}
    dirs = {k: v for k, v in dirs.items() if os.path.exists(os.path.join(v, POLICY_META))}
    if not dirs:
        raise FileNotFoundError(f"{directory} holds no policy ({POLICY_META}, policy_il/ or policy_rl/)")
    return dirs


def suite_behaviours(daa: str) -> list:
    """DAA behaviours of the evaluation suite for `--daa` ("none", "all" or one name)."""
    from agents import adversaries
    from agents.train_config import DAA_BEHAVIOURS

    if daa not in ("none", "all") + DAA_BEHAVIOURS:
        raise ValueError(f"--daa is {daa!r}; allowed: none, all, {', '.join(DAA_BEHAVIOURS)}")
    if daa == "none":
        return []
    if not adversaries.daa_available():
        raise ValueError("--daa needs jaxsim.daa")
    return list(DAA_BEHAVIOURS) if daa == "all" else [daa]


def evaluate_checkpoint(directory: str, bank, daa: str = "none", seed: int = 0) -> dict:
    """RAD rows {"<policy> [<condition>]": aggregate_seeds(...)} for a policy directory
    or a run directory (its policy_il / policy_rl). daa: "none", "all" or one behaviour name.

    Runs `evaluate_suite`, the code `reconrl train` evaluates with, so `--daa all` with
    the run's eval seed reproduces the run's table (rows log-replay, each behaviour,
    daa-all)."""
    from agents.checkpoint import load_policy
    from jaxsim.env import DrivingEnv

    dirs = checkpoint_dirs(directory)
    behaviours = suite_behaviours(daa)
    key = jax.random.PRNGKey(seed)
    rows = {}
    for name, d in dirs.items():
        network, params, meta, cfg = load_policy(d)
        if not meta.get("seeds", 0):
            params = jax.tree.map(lambda x: x[None], params)
        env = DrivingEnv(cfg.env)

        def rollout(env_p, ids, k, env=env, network=network, params=params):
            return rollout_learned(env, network, params, env_p, ids, k)

        for cond, agg in evaluate_suite(rollout, env.default_params(bank), behaviours, key).items():
            rows[f"{name} [{cond}]"] = agg
    return rows
