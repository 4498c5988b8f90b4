"""The experiment behind `reconrl train`: IL, then PPO initialised from IL, then closed-loop
evaluation of both on the held-out split (DAA off and each DAA behaviour).

Layout of a run directory:
  config.yaml          resolved config (a resumed run must match it)
  ckpt/il, ckpt/ppo    orbax chunk checkpoints (full training state, RNG included)
  policy_il, policy_rl exported policies (`reconrl eval --checkpoint DIR`)
  log.jsonl, il.csv, ppo.csv, tb/   logs
  results.json, results.md          the comparison table
All `seeds` runs train at once (jax.vmap over seeds); tables report mean and std.
"""

from __future__ import annotations

import dataclasses
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from agents import adversaries, il
from agents.checkpoint import save_policy
from agents.logging_utils import RunLogger
from agents.networks import init_params, make_network
from agents.runner import run_phase
from agents.train_config import TrainConfig, config_to_dict
from jaxsim.env import DrivingEnv


def build_banks(cfg: TrainConfig):
    """(train bank, held-out bank) from the configured source."""
    sc = cfg.scenarios
    if sc.source == "file":
        from jaxsim.bank_io import load_bank

        for name in ("train_path", "heldout_path"):
            if not getattr(sc, name):
                raise ValueError(f"'scenarios.{name}' is required when scenarios.source is 'file'")
        return load_bank(sc.train_path), load_bank(sc.heldout_path)
    from jaxsim.procedural import generate_bank

    return generate_bank(sc.num_train, split="train", seed=sc.seed), generate_bank(
        sc.num_heldout, split="heldout", seed=sc.seed
    )


def build_validation_bank(cfg: TrainConfig, train_bank):
    """The validation bank (`scenarios.num_validation` procedural scenes, or
    `scenarios.validation_path`), or None; ValueError if it shares a scenario with `train_bank`."""
    sc = cfg.scenarios
    if sc.validation_path:
        from jaxsim.bank_io import load_bank

        bank = load_bank(sc.validation_path)
    elif sc.num_validation == 0:
        return None
    elif sc.source == "procedural":
        from jaxsim.procedural import generate_bank

        bank = generate_bank(sc.num_validation, split="validation", seed=sc.seed)
    else:
        raise ValueError("'scenarios.num_validation' needs 'scenarios.validation_path' when scenarios.source is 'file'")
    shared = np.intersect1d(np.asarray(bank.scenario_id), np.asarray(train_bank.scenario_id))
    if shared.size:
        raise ValueError(
            f"the validation bank shares {shared.size} scenario id(s) with the train bank, e.g. {shared[0]}"
        )
    return bank


def env_params_for(env: DrivingEnv, bank, cfg: TrainConfig):
    params = env.default_params(bank)
    rewards = params.rewards.replace(progress_weight=jnp.float32(cfg.ppo.progress_weight),
                                     at_fault_only=jnp.bool_(cfg.ppo.reward_collisions == "at_fault"))  # fmt: skip
    return params.replace(rewards=rewards)


def imitation_pairs(env, params, cfg: TrainConfig) -> il.Pairs:
    """Expert-log pairs on every train scenario, plus CTG cousin pairs when available."""
    n = params.bank.num_scenarios
    parts = [il.expert_pairs(env, params, np.arange(n))]
    if cfg.ctg.enabled:
        cousins = _ctg_pairs(env, params, cfg)
        if cousins is not None:
            parts.append(cousins)
    return il.Pairs.concat(parts) if len(parts) > 1 else parts[0]


def _ctg_pairs(env, params, cfg):
    try:
        from jaxsim.ctg.imitation import imitation_batch  # noqa: F401
    except ImportError:
        return None
    from agents.ctg_data import cousin_pairs

    return cousin_pairs(env, params, cfg)


def _seed_keys(cfg: TrainConfig):
    return jax.random.split(jax.random.PRNGKey(cfg.seed), cfg.seeds)


def policy_meta(cfg: TrainConfig, obs_shape, kind: str) -> dict:
    d = config_to_dict(cfg)
    return {"kind": kind, "network": d["network"], "env": d["env"], "obs_shape": list(obs_shape), "seeds": cfg.seeds}


def train_il(cfg, env, params, network, params0, out, logger, stop_after=None, mesh=None):
    """BC on expert (+ CTG) pairs, then `il.dagger_rounds` DAgger rounds, each its own
    checkpointed phase (ckpt/il, ckpt/il_dagger1, ...) so a killed run resumes exactly.

    IL is not data-parallel: with a `mesh` its state is replicated over the mesh (every
    process computes the same steps; orbax saves global arrays only) and the returned
    parameters are host arrays."""
    pairs = imitation_pairs(env, params, cfg)
    rounds = cfg.il.dagger_rounds
    round_steps = cfg.il.dagger_steps or max(cfg.il.steps // (rounds + 1), 1)
    total = cfg.il.steps + rounds * round_steps
    init, chunk = il.make_il(dataclasses.replace(cfg.il, steps=total), network, pairs)
    keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(_seed_keys(cfg))
    state = jax.vmap(init)(keys, params0)
    replicate, to_host = _replicated_on(mesh)
    state = replicate(state)
    summary = lambda m: f"loss={float(np.mean(m['il_loss'])):.3f}"  # noqa: E731
    per = cfg.il.steps_per_chunk
    state, _, _ = run_phase(
        "il", os.path.join(out, "ckpt", "il"), state, jax.jit(jax.vmap(chunk)), -(-cfg.il.steps // per),
        per * cfg.il.batch_size, "samples", logger, cfg.log.progress, stop_after, summary,
    )  # fmt: skip
    extra = None
    for r in range(1, rounds + 1):
        from agents.dagger import pad_valid, visited_pairs

        new = _dagger_round(cfg, env, params, network, to_host(state.params), r, visited_pairs, pad_valid)
        extra = new if extra is None else jax.tree.map(lambda a, b: jnp.concatenate([a, b], axis=1), extra, new)
        logger.log("il_dagger", r, {"pairs": float(extra.obs.shape[1])})
        step = jax.jit(jax.vmap(chunk))
        state, _, _ = run_phase(
            f"il_dagger{r}", os.path.join(out, "ckpt", f"il_dagger{r}"), state, lambda st, d=replicate(extra): step(st, d),
            -(-round_steps // per), per * cfg.il.batch_size, "samples", logger, cfg.log.progress, stop_after, summary,
        )  # fmt: skip
    return to_host(state.params), pairs


def _replicated_on(mesh):
    """(replicate, to_host): copy a pytree onto `mesh` replicated / back to host arrays;
    both identity without a mesh (the single-device program is unchanged)."""
    if mesh is None:
        return (lambda tree: tree), (lambda tree: tree)
    from agents.sharding import host_value, put, replicated, tree_shardings

    return (lambda tree: put(tree, tree_shardings(tree, replicated(mesh)))), (
        lambda tree: jax.tree.map(host_value, tree)
    )


def _dagger_round(cfg, env, params, network, seed_params, r, visited_pairs, pad_valid):
    """Expert-labelled states of each seed's own IL policy: one greedy episode per
    training scenario plus `dagger_repeats - 1` sampled ones; (S, M, ...) all valid."""
    n = params.bank.num_scenarios
    key = jax.random.fold_in(jax.random.PRNGKey(cfg.seed + 13), r)
    parts = [visited_pairs(env, params, network, seed_params, np.arange(n), key, sample=False)]
    if cfg.il.dagger_repeats > 1:
        ids = np.tile(np.arange(n), cfg.il.dagger_repeats - 1)
        parts.append(visited_pairs(env, params, network, seed_params, ids, jax.random.fold_in(key, 1), sample=True))
    both = jax.tree.map(lambda *xs: jnp.concatenate(xs, axis=1), *parts)
    return pad_valid(both)


def cousin_starts(cfg, env, params):
    """(env, params) whose episodes start on CTG cousins when `ctg.ppo_starts`: a
    `CousinResetWrapper` over a precomputed, shared cousin bank. The wrapper changes the
    `reset_state` primitive, so PPO's pool resets (`venv.reset` in `agents.ppo`) and
    every auto-reset start on a cousin too. Unchanged otherwise."""
    if not (cfg.ctg.enabled and cfg.ctg.ppo_starts):
        return env, params
    from jaxsim.ctg.config import CTGConfig
    from jaxsim.ctg.reset import CousinResetWrapper, build_cousin_bank, with_cousin_bank

    ctg = CTGConfig(num_cousins=cfg.ctg.num_cousins)
    cousins = build_cousin_bank(jax.random.PRNGKey(cfg.seed + 11), params, ctg, chunk=256)
    return CousinResetWrapper(env, ctg, p_expert=cfg.ctg.ppo_expert_share), with_cousin_bank(params, cousins)


def train_ppo(cfg, env, params, network, init_p, out, logger, il_pairs=None, stop_after=None, mesh=None):
    """PPO from `init_p` (S seeds); with a `mesh` the env batch is sharded over its
    devices (`agents.sharded_ppo`), else today's single-device program. Returns
    (params as host arrays when sharded, env-steps/s)."""
    from agents.ppo import make_ppo

    env, params = cousin_starts(cfg, env, params)
    ppo = make_ppo(cfg.ppo, env, network, batched_params=True, il_pairs=il_pairs, mesh=mesh)
    keys = _seed_keys(cfg)
    behaviours = cfg.daa.behaviours if (cfg.daa.enabled and adversaries.daa_available()) else ()
    env_params = adversaries.with_daa(params, cfg.ppo.num_envs, behaviours, jax.random.PRNGKey(cfg.seed + 7),
                                      keep_unavoidable=cfg.daa.keep_unavoidable)  # fmt: skip
    init_keys = jax.vmap(lambda k: jax.random.fold_in(k, 2))(keys)
    if mesh is None:
        runner = jax.vmap(ppo.init, in_axes=(0, 0, None))(init_keys, init_p, env_params)
        chunk = jax.jit(jax.vmap(ppo.chunk, in_axes=(0, None)))
    else:
        from agents.sharded_ppo import shard_ppo

        sp = shard_ppo(ppo, mesh, init_keys, init_p, env_params, cfg.ppo.num_envs)
        runner, env_params, chunk = sp.runner, sp.env_params, sp.chunk
    n_chunks = -(-cfg.ppo.num_updates // cfg.ppo.updates_per_chunk)
    units = cfg.ppo.updates_per_chunk * ppo.env_steps_per_update * cfg.seeds

    def summary(m):
        return (f"return={float(np.mean(m['return'][..., -1])):.3f} "
                f"DCR={float(np.mean(m['dynamic_collision'][..., -1])):.3f} "
                f"done={float(np.mean(m['route_completion'][..., -1])):.2f}")  # fmt: skip

    runner, _, rate = run_phase(
        "ppo", os.path.join(out, "ckpt", "ppo"), runner, lambda r: chunk(r, env_params), n_chunks, units,
        "env_steps", logger, cfg.log.progress, stop_after, summary,
    )  # fmt: skip
    return (runner.params if mesh is None else jax.tree.map(np.asarray, runner.params)), rate


def evaluate_policies(cfg, env, heldout_params, network, policies: dict, mesh=None) -> dict:
    """{condition: {policy name: aggregate_seeds(...)}} on every held-out scenario
    (episodes sharded over `mesh` where it divides them)."""
    from agents.eval_learned import evaluate_suite, rollout_learned

    key = jax.random.PRNGKey(cfg.eval.seed)
    conditions = adversaries.eval_conditions(cfg.daa.behaviours, cfg.eval.with_daa and cfg.daa.enabled)
    behaviours = [beh[0] for _, beh in conditions if beh]
    out: dict = {}
    for name, p in policies.items():
        rows = evaluate_suite(
            lambda env_p, ids, k: rollout_learned(env, network, p, env_p, ids, k, mesh), heldout_params, behaviours, key
        )
        for row, agg in rows.items():
            out.setdefault(row, {})[name] = agg
    return out


def run_training(cfg: TrainConfig, out: str, stop_after: int | None = None, banks=None) -> dict:
    """Run the whole experiment into `out`; returns the results dict (also written as JSON/MD).

    banks: optional (train, held-out) banks instead of `cfg.scenarios` (tests).
    stop_after: interrupt each phase after this many chunks (tests of resuming).
    """
    if cfg.env.obs == "camera":  # policies see 3DGS images: agents.camera_trainer
        from agents.camera_trainer import run_camera_training

        return run_camera_training(cfg, out, stop_after, banks)
    from agents.report import comparison_markdown, write_results
    from agents.sharding import mesh_for

    t0 = time.perf_counter()
    mesh = mesh_for(cfg.train, cfg.ppo.num_envs)  # None: one device, today's program unchanged
    train_bank, heldout_bank = banks if banks is not None else build_banks(cfg)
    env = DrivingEnv(cfg.env)
    params = env_params_for(env, train_bank, cfg)
    obs_shape = env.observation_shape(params)
    network = make_network(cfg.network, cfg.env, obs_shape, jax.random.PRNGKey(cfg.seed))
    params0 = init_params(cfg.network, cfg.env, obs_shape, _seed_keys(cfg))
    rank = jax.process_index()  # several processes share `out`: each logs to its own files
    logger = RunLogger(out if rank == 0 else os.path.join(out, f"process{rank}"), cfg.log.tensorboard)
    results: dict = {"config": config_to_dict(cfg), "timing": {}}
    policies: dict = {}
    il_pairs = None
    try:
        start = params0
        if cfg.il.enabled and cfg.il.steps > 0:
            t = time.perf_counter()
            il_params, il_pairs = train_il(cfg, env, params, network, params0, out, logger, stop_after, mesh)
            results["timing"]["il_s"] = time.perf_counter() - t
            held = il.expert_pairs(env, env_params_for(env, heldout_bank, cfg), np.arange(heldout_bank.num_scenarios))
            accs = [il.accuracy(network, jax.tree.map(lambda x: x[s], il_params), held) for s in range(cfg.seeds)]
            results["il_heldout_accuracy"] = {k: float(np.mean([a[k] for a in accs])) for k in accs[0]}
            logger.log("il_eval", 0, results["il_heldout_accuracy"])
            save_policy(os.path.join(out, "policy_il"), il_params, policy_meta(cfg, obs_shape, "il"))
            policies["IL"] = il_params
            start = il_params
        if cfg.ppo.enabled and cfg.ppo.num_updates > 0:
            if il_pairs is None and (cfg.ppo.il_coef > 0 or cfg.ppo.il_interleave > 0):
                il_pairs = imitation_pairs(env, params, cfg)
            t = time.perf_counter()
            rl_params, rate = train_ppo(cfg, env, params, network, start, out, logger, il_pairs, stop_after, mesh)
            results["timing"]["ppo_s"] = time.perf_counter() - t
            results["ppo_env_steps_per_s"] = rate
            save_policy(os.path.join(out, "policy_rl"), rl_params, policy_meta(cfg, obs_shape, "rl"))
            policies["RL"] = rl_params
        if cfg.eval.enabled and policies:
            t = time.perf_counter()
            heldout_params = env_params_for(env, heldout_bank, cfg)
            results["eval"] = evaluate_policies(cfg, env, heldout_params, network, policies, mesh)
            results["timing"]["eval_s"] = time.perf_counter() - t
            val_bank = build_validation_bank(cfg, train_bank)
            if val_bank is not None:
                t = time.perf_counter()
                val_params = env_params_for(env, val_bank, cfg)
                results["validation_eval"] = evaluate_policies(cfg, env, val_params, network, policies, mesh)
                results["timing"]["validation_eval_s"] = time.perf_counter() - t
            if cfg.eval.videos and rank == 0:
                from agents.video import write_videos

                name = list(policies)[-1]
                results["videos"] = write_videos(env, heldout_params, network, policies[name], cfg, out, name)
    finally:
        logger.close()
    results["timing"]["total_s"] = time.perf_counter() - t0
    if rank == 0:  # every process holds the same results
        write_results(results, out)
    if "eval" in results:
        print(comparison_markdown(results))
    return results
