"""`reconrl train` with `env.obs: camera`: end-to-end driving from 3DGS pixels.

The same experiment as `agents.trainer` (IL with DAgger rounds, then PPO initialised
from IL against DAA adversaries, then the held-out suite), with camera observations:
  - IL on expert-log and CTG-cousin pairs rendered once (`agents.camera_data`), plus
    DAgger rounds on the camera policy's own closed-loop states, labelled by the expert
    or, with `il.teacher`, by a privileged vector-observation policy;
  - PPO from pixels (`agents.camera_ppo`), same losses and decoupled advantages;
  - the perception head's auxiliary loss (`network.perception_coef`) in both stages;
  - every phase checkpointed per chunk (orbax) and resumed exactly (`agents.runner`);
  - episode GIFs of the camera view beside the BEV (`agents.camera_video`).
Run directory layout as in `agents.trainer`.
"""

from __future__ import annotations

import dataclasses
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from agents import adversaries, il
from agents.camera_obs import Camera, commit, obs_shape
from agents.checkpoint import save_policy
from agents.logging_utils import RunLogger
from agents.networks import init_params, make_network
from agents.runner import restore_finished_phase, run_phase
from agents.train_config import TrainConfig, config_to_dict
from jaxsim.env import DrivingEnv


def _seed_keys(cfg):
    return jax.random.split(jax.random.PRNGKey(cfg.seed), cfg.seeds)


def camera_policy_meta(cfg: TrainConfig, shape: dict, kind: str) -> dict:
    d = config_to_dict(cfg)
    return {"kind": kind, "network": d["network"], "env": d["env"], "render": d["render"],
            "obs_shape": {k: list(v) for k, v in shape.items()}, "seeds": cfg.seeds}  # fmt: skip


def load_teacher(path: str):
    """(network, params of its first seed) of a vector-observation policy directory."""
    from agents.checkpoint import load_policy

    network, params, meta, tcfg = load_policy(path)
    if tcfg.env.obs != "vector":
        raise ValueError(
            f"'il.teacher' {path} is a {tcfg.env.obs!r} policy; the teacher must see the vector observation"
        )
    if meta.get("seeds", 0):
        params = jax.tree.map(lambda x: x[0], params)
    return network, params


def train_camera_il(cfg, env, params, camera, network, params0, out, logger, stop_after=None):
    """BC on rendered expert (+ cousin) pairs, then DAgger rounds; each its own phase."""
    from agents.camera_data import cousin_camera_pairs, dagger_camera_pairs, expert_camera_pairs

    ego, coef, frames = cfg.render.ego_state, cfg.network.perception_coef, cfg.render.frames
    n = params.bank.num_scenarios
    parts = [expert_camera_pairs(env, params, camera, np.arange(n), cfg.il.stride, ego, frames)]
    if cfg.ctg.enabled:
        key = jax.random.PRNGKey(cfg.seed + 11)
        parts.append(cousin_camera_pairs(env, params, camera, cfg.ctg.num_cousins, cfg.il.stride, ego, key, frames))
    pairs = il.Pairs.concat(parts) if len(parts) > 1 else parts[0]
    logger.log("il_pairs", 0, {"pairs": float(pairs.valid.shape[0])})
    rounds = cfg.il.dagger_rounds
    round_steps = cfg.il.dagger_steps or max(cfg.il.steps // (rounds + 1), 1)
    total = cfg.il.steps + rounds * round_steps
    pairs = commit(pairs)
    init, chunk = il.make_il(dataclasses.replace(cfg.il, steps=total), network, None, perception_coef=coef)
    keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(_seed_keys(cfg))
    state = commit(jax.vmap(init)(keys, params0))
    summary = lambda m: f"loss={float(np.mean(m['il_loss'])):.3f}"  # noqa: E731
    per = cfg.il.steps_per_chunk
    bc = jax.jit(jax.vmap(lambda st, b: chunk(st, None, b), in_axes=(0, None)))
    step = jax.jit(jax.vmap(lambda st, d, b: chunk(st, d, b), in_axes=(0, 0, None)))
    state, _, _ = run_phase(
        "il", os.path.join(out, "ckpt", "il"), state, lambda st: bc(st, pairs), -(-cfg.il.steps // per),
        per * cfg.il.batch_size, "samples", logger, cfg.log.progress, stop_after, summary,
    )  # fmt: skip
    round_chunks = -(-round_steps // per)
    # a resume after IL: the DAgger pairs fed only the finished rounds, so none are collected again
    last_round = os.path.join(out, "ckpt", f"il_dagger{rounds}")
    done = restore_finished_phase(last_round, state, round_chunks) if rounds else None
    if done is not None:
        return done.params, pairs
    teacher = load_teacher(cfg.il.teacher) if cfg.il.teacher else None
    extra = None
    for r in range(1, rounds + 1):
        key = jax.random.fold_in(jax.random.PRNGKey(cfg.seed + 13), r)
        ids = np.tile(np.arange(n), cfg.il.dagger_repeats)
        new = dagger_camera_pairs(env, params, camera, network, state.params, ids, key, ego, teacher, frames=frames)
        extra = commit(new if extra is None else jax.tree.map(lambda a, b: jnp.concatenate([a, b], axis=1), extra, new))
        logger.log("il_dagger", r, {"pairs": float(extra.valid.shape[1])})
        state, _, _ = run_phase(
            f"il_dagger{r}", os.path.join(out, "ckpt", f"il_dagger{r}"), state, lambda st, d=extra: step(st, d, pairs),
            round_chunks, per * cfg.il.batch_size, "samples", logger, cfg.log.progress, stop_after, summary,
        )  # fmt: skip
    return state.params, pairs


def train_camera_ppo(cfg, env, params, camera, network, init_p, out, logger, il_pairs=None, stop_after=None):
    from agents.camera_ppo import make_camera_ppo

    ppo = make_camera_ppo(cfg.ppo, env, network, camera, cfg.seeds, cfg.render.ego_state, cfg.network.perception_coef,
                          il_pairs=il_pairs if cfg.ppo.il_coef > 0 else None, frames=cfg.render.frames)  # fmt: skip
    behaviours = cfg.daa.behaviours if (cfg.daa.enabled and adversaries.daa_available()) else ()
    env_params = adversaries.with_daa(params, cfg.ppo.num_envs, behaviours, jax.random.PRNGKey(cfg.seed + 7))
    keys = jax.vmap(lambda k: jax.random.fold_in(k, 2))(_seed_keys(cfg))
    runner = ppo.init(keys, init_p, env_params)
    n_chunks = -(-cfg.ppo.num_updates // cfg.ppo.updates_per_chunk)
    units = cfg.ppo.updates_per_chunk * ppo.env_steps_per_update * cfg.seeds

    def summary(m):
        return (f"return={float(np.mean(m['return'][..., -1])):.3f} "
                f"DCR={float(np.mean(m['dynamic_collision'][..., -1])):.3f} "
                f"done={float(np.mean(m['route_completion'][..., -1])):.2f}")  # fmt: skip

    runner, _, rate = run_phase(
        "ppo", os.path.join(out, "ckpt", "ppo"), runner, lambda r: ppo.chunk(r, env_params), n_chunks, units,
        "env_steps", logger, cfg.log.progress, stop_after, summary,
    )  # fmt: skip
    return runner.params, rate, dict(ppo.timers)


def heldout_il_accuracy(cfg, env, heldout_params, camera, network, il_params) -> dict:
    """The IL policy's agreement with the expert on rendered held-out expert frames (every
    `il.stride`-th step), averaged over seeds: the vector trainer's `il_heldout_accuracy`."""
    from agents.camera_data import expert_camera_pairs

    ids = np.arange(heldout_params.bank.num_scenarios)
    held = expert_camera_pairs(env, heldout_params, camera, ids, cfg.il.stride, cfg.render.ego_state, cfg.render.frames)
    accs = [il.accuracy(network, jax.tree.map(lambda x: x[s], il_params), held) for s in range(cfg.seeds)]
    return {k: float(np.mean([a[k] for a in accs])) for k in accs[0]}


def evaluate_camera_policies(cfg, env, heldout_params, camera, network, policies: dict) -> dict:
    """{condition: {policy: aggregate_seeds(...)}} on the held-out suite (same adversaries
    as the vector trainer's table: `agents.eval_learned.evaluate_suite`)."""
    from agents.camera_eval import rollout_camera
    from agents.eval_learned import evaluate_suite

    key = jax.random.PRNGKey(cfg.eval.seed)
    conditions = adversaries.eval_conditions(cfg.daa.behaviours, cfg.eval.with_daa and cfg.daa.enabled)
    behaviours = [beh[0] for _, beh in conditions if beh]
    out: dict = {}
    for name, p in policies.items():

        def rollout(env_p, ids, k, p=p):
            return rollout_camera(
                env, camera, network, p, env_p, ids, k, cfg.render.ego_state, frames=cfg.render.frames
            )

        for row, agg in evaluate_suite(rollout, heldout_params, behaviours, key).items():
            out.setdefault(row, {})[name] = agg
    return out


def run_camera_training(cfg: TrainConfig, out: str, stop_after: int | None = None, banks=None) -> dict:
    """The camera experiment into `out` (see the module docstring); returns the results dict."""
    from agents.report import comparison_markdown, write_results
    from agents.trainer import build_banks, build_validation_bank, env_params_for

    t0 = time.perf_counter()
    train_bank, heldout_bank = banks if banks is not None else build_banks(cfg)
    env = DrivingEnv(cfg.env)
    params = env_params_for(env, train_bank, cfg)
    camera = Camera.build(cfg.render, train_bank)
    vec_dim = int(env.observation_shape(params)[-1])
    shape = obs_shape(cfg.render, cfg.env, vec_dim, cfg.network.perception_coef > 0)
    network = make_network(cfg.network, cfg.env, shape, jax.random.PRNGKey(cfg.seed))
    params0 = init_params(cfg.network, cfg.env, shape, _seed_keys(cfg))
    heldout_params, held_camera = env_params_for(env, heldout_bank, cfg), Camera.build(cfg.render, heldout_bank)
    logger = RunLogger(out, cfg.log.tensorboard)
    results: dict = {"config": config_to_dict(cfg), "timing": {}}
    policies: dict = {}
    il_pairs = None
    try:
        start = params0
        if cfg.il.enabled and cfg.il.steps > 0:
            t = time.perf_counter()
            il_params, il_pairs = train_camera_il(cfg, env, params, camera, network, params0, out, logger, stop_after)
            results["timing"]["il_s"] = time.perf_counter() - t
            acc = heldout_il_accuracy(cfg, env, heldout_params, held_camera, network, il_params)
            results["il_heldout_accuracy"] = acc
            logger.log("il_eval", 0, acc)
            save_policy(os.path.join(out, "policy_il"), il_params, camera_policy_meta(cfg, shape, "il"))
            policies["IL"] = start = il_params
        if cfg.ppo.enabled and cfg.ppo.num_updates > 0:
            if il_pairs is None and cfg.ppo.il_coef > 0:
                raise ValueError(
                    "'ppo.il_coef' > 0 needs the IL stage ('il.enabled' with 'il.steps' > 0) for camera pairs"
                )
            t = time.perf_counter()
            rl_params, rate, timers = train_camera_ppo(
                cfg, env, params, camera, network, start, out, logger, il_pairs, stop_after
            )
            results["timing"]["ppo_s"] = time.perf_counter() - t
            results["timing"]["ppo_split_s"] = timers
            results["ppo_env_steps_per_s"] = rate
            save_policy(os.path.join(out, "policy_rl"), rl_params, camera_policy_meta(cfg, shape, "rl"))
            policies["RL"] = rl_params
        if cfg.eval.enabled and policies:
            t = time.perf_counter()
            results["eval"] = evaluate_camera_policies(cfg, env, heldout_params, held_camera, network, policies)
            results["timing"]["eval_s"] = time.perf_counter() - t
            val_bank = build_validation_bank(cfg, train_bank)
            if val_bank is not None:
                t = time.perf_counter()
                val_params, val_camera = env_params_for(env, val_bank, cfg), Camera.build(cfg.render, val_bank)
                results["validation_eval"] = evaluate_camera_policies(
                    cfg, env, val_params, val_camera, network, policies
                )
                results["timing"]["validation_eval_s"] = time.perf_counter() - t
            if cfg.eval.videos:
                from agents.camera_video import write_camera_videos

                name = list(policies)[-1]
                results["videos"] = write_camera_videos(
                    env, heldout_params, held_camera, network, policies[name], cfg, out, name
                )
    finally:
        logger.close()
    results["timing"]["total_s"] = time.perf_counter() - t0
    write_results(results, out)
    if "eval" in results:
        print(comparison_markdown(results))
    return results
