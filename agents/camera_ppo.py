"""PPO from pixels: the vector trainer's losses, with observations rendered by 3DGS.

DLPack conversion cannot happen inside `jax.jit`, so one rollout step is three calls:
a jitted policy (sample actions for every seed's envs), a jitted simulator step (RAD
rewards, events, auto-reset from a pool drawn once per rollout, and where every camera
and car is), then the torch render of the new states through DLPack. Everything that is
not rendering is jitted; the rollout buffer keeps images as uint8 on the device, and the
update (`agents.ppo.make_learn`, the same function the vector trainer scans) is one
jitted call per rollout, vmapped over seeds.

Truncated episodes bootstrap V(final observation) from the rendered final state: only
the envs whose episode was truncated this step (not terminated by an event, where the
value is 0 anyway) are rendered a second time, so the extra cost is proportional to the
number of truncations.

    ppo = make_camera_ppo(cfg.ppo, env, network, camera, num_seeds, render_cfg, perception_coef)
    runner = ppo.init(keys, params, env_params)       # params with a leading seed axis
    runner, metrics = ppo.chunk(runner, env_params)   # cfg.updates_per_chunk updates
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from agents import policies as pol
from agents.camera_obs import commit, flatten_lead, policy_obs, render_inputs, stack_frames
from agents.ppo import (
    Transition,
    episode_stats,
    event_direction,
    make_learn,
    make_optimizer,
    rollout_metrics,
    step_rewards,
)
from jaxsim.metrics import finalize
from jaxsim.wrappers import VmapWrapper, params_axes


@struct.dataclass
class CameraRunner:
    """Training state, every leaf with a leading seed axis (S, ...); checkpointed whole."""

    params: dict
    opt_state: object
    env_state: object
    obs: dict  # {"image": (S, N, F * C, H, W, 3) uint8 (F frames), "ego": (S, N, E)}
    privileged: jnp.ndarray  # (S, N, D) vector observation of the current states
    key: jax.Array
    update: jnp.ndarray
    ep_return: jnp.ndarray  # (S, N)


@dataclasses.dataclass
class CameraPPO:
    init: Callable
    update: Callable
    chunk: Callable
    env_steps_per_update: int
    timers: dict  # cumulative seconds: render / simulate / learn (synchronised when `profile`)


def make_camera_ppo(cfg, env, network, camera, num_seeds: int, ego: bool = True, perception_coef: float = 0.0,
                    il_pairs=None, batched_params: bool = True, profile: bool = False, frames: int = 1) -> CameraPPO:  # fmt: skip
    """PPO functions for a DrivingEnv (obs "camera") seen through `camera` (agents.camera_obs.Camera).

    frames: env steps the policy sees (`render.frames`; an auto-reset restarts the stack).
    profile: synchronise after each stage so `timers` split the time exactly (benchmarks)."""
    venv = VmapWrapper(env, cfg.num_envs, batched_params)
    env_cfg = env.config
    rig = camera.rig
    opt = make_optimizer(cfg)
    if cfg.il_coef > 0 and il_pairs is None:
        raise ValueError("ppo.il_coef > 0 needs IL pairs (camera pairs from the IL stage), or set ppo.il_coef=0")
    il_pairs = commit(il_pairs) if cfg.il_coef > 0 else None
    learn = make_learn(cfg, network, perception_coef=perception_coef, il_as_argument=True)
    apply = network.apply
    n, s_count = cfg.num_envs, num_seeds
    timers = {"render": 0.0, "simulate": 0.0, "learn": 0.0}
    p_axes = None  # env params are shared by the seeds

    def inputs_of(state, env_params):
        axes = params_axes(env_params, batched_params)
        return jax.vmap(lambda st, p: render_inputs(env, st, p, rig), in_axes=(0, axes))(state, env_params)

    @jax.jit
    def reset(keys, env_params):
        vec, state = jax.vmap(venv.reset, in_axes=(0, p_axes))(keys, env_params)
        return vec, state, jax.vmap(inputs_of, in_axes=(0, p_axes))(state, env_params)

    @jax.jit
    def act(params, obs, keys):
        def one(p, o, k):
            out = apply(p, o)
            a = pol.sample(out, k)
            return a, pol.log_prob(out, a), out.values

        return jax.vmap(one)(params, obs, keys)

    @jax.jit
    def sim_step(keys, state, action, pool_state, pool_vec, env_params, ep_ret):
        def one(k, st, a, pst, pvec, er):
            env_a = pol.to_env_action(a, env_params.dynamics, network.discrete)
            final_vec, final_state, _, term, trunc, info = venv.step(k, st, env_a, env_params)
            done = term | trunc
            pick = lambda r, x: jnp.where(done.reshape((-1,) + (1,) * (x.ndim - 1)), r, x)  # noqa: E731
            state2 = jax.tree.map(pick, pst, final_state)
            rewards = step_rewards(cfg, env, info, final_state, env_params, batched_params)
            er = er + rewards[:, 0] + rewards[:, 1] * cfg.decoupled
            stats = episode_stats(done, er, jax.vmap(finalize)(final_state.metrics))
            er = jnp.where(done, 0.0, er)
            direction = jax.vmap(event_direction)(info["events"])
            return (state2, pick(pvec, final_vec), rewards, term, done, trunc & ~term, direction, stats, er,
                    inputs_of(state2, env_params), inputs_of(final_state, env_params), final_vec)  # fmt: skip

        return jax.vmap(one)(keys, state, action, pool_state, pool_vec, ep_ret)

    @jax.jit
    def final_values(params, rows, images, final_vec):
        """(S * N, 2) V(final obs) at `rows` (K,) of the flat env axis (0 elsewhere);
        images (K, F * C, H, W, 3) the final observations' frame stacks."""
        vec = final_vec.reshape((s_count * n,) + final_vec.shape[2:])[rows]
        obs = policy_obs(images, vec, env_cfg, ego)
        vals = jax.vmap(lambda p: apply(p, obs).values)(params)  # (S, K, 2) under every seed's params
        own = vals[rows // n, jnp.arange(rows.shape[0])]  # each row under its own seed's params
        return jnp.zeros((s_count * n, 2)).at[rows].set(own)

    @jax.jit
    def learn_all(params, opt_state, key, steps, stats, last_obs, il_data):
        traj = jax.tree.map(lambda *x: jnp.stack(x, axis=1), *steps)  # (S, T, N, ...)
        stats = jax.tree.map(lambda *x: jnp.stack(x, axis=1), *stats)

        def one(p, o, k, tr, st, lo):
            last_v = apply(p, lo).values
            p, o, k, aux = learn(p, o, k, tr, last_v, il_data)
            return p, o, k, rollout_metrics(tr, st, aux)

        return jax.vmap(one)(params, opt_state, key, traj, stats, last_obs)

    def _sync(x):
        if profile:
            jax.block_until_ready(x)
        return x

    def init(keys, params, env_params) -> CameraRunner:
        keys, params = commit((keys, params))
        k_reset, keys = _split(keys)
        vec, state, inputs = reset(k_reset, env_params)
        images = stack_frames(camera.render(inputs, n_lead=2), frames)
        opt_state = jax.vmap(opt.init)(params)
        return commit(CameraRunner(params, opt_state, state, policy_obs(images, vec, env_cfg, ego), vec, keys,
                                   jnp.zeros((s_count,), jnp.int32), jnp.zeros((s_count, n))))  # fmt: skip

    no_values = commit(jnp.zeros((s_count, n, 2)))

    def update(runner: CameraRunner, env_params):
        keys, k_pool = _split(runner.key)
        t0 = time.perf_counter()
        pool_vec, pool_state, _ = _sync(reset(k_pool, env_params))
        timers["simulate"] += time.perf_counter() - t0
        state, obs, vec, ep_ret = runner.env_state, runner.obs, runner.privileged, runner.ep_return
        steps, stats_list = [], []
        for _ in range(cfg.num_steps):
            t0 = time.perf_counter()
            keys, k_act = _split(keys)
            keys, k_env = _split(keys)
            action, logp, values = act(runner.params, obs, k_act)
            (state2, vec2, rewards, term, done, trunc_only, direction, stats, ep_ret,
             inputs2, final_inputs, final_vec) = _sync(sim_step(k_env, state, action, pool_state, pool_vec, env_params, ep_ret))  # fmt: skip
            t1 = time.perf_counter()
            images = _sync(camera.render(inputs2, n_lead=2))
            next_values = no_values
            if cfg.bootstrap_truncated:
                sub = camera.renderer.render_rows(*flatten_lead(final_inputs, 2), np.asarray(trunc_only).reshape(-1))
                if sub is not None:
                    rows, final = sub[0], sub[1]
                    if frames > 1:  # the final frame follows the ending episode's current stack
                        final = stack_frames(final, frames, prev=flatten_lead(obs["image"], 2)[rows])
                    next_values = final_values(runner.params, rows, final, final_vec).reshape((s_count, n, 2))
            t2 = time.perf_counter()
            timers["simulate"] += t1 - t0
            timers["render"] += t2 - t1
            steps.append(Transition(obs=obs, action=action, logp=logp, values=values, next_values=next_values,
                                    rewards=rewards, terminated=term, done=done, direction=direction,
                                    privileged=vec if perception_coef > 0 else None))  # fmt: skip
            stats_list.append(stats)
            images = stack_frames(images, frames, prev=obs["image"], restart=done)
            state, vec, obs = state2, vec2, policy_obs(images, vec2, env_cfg, ego)
        t0 = time.perf_counter()
        params, opt_state, keys, metrics = _sync(
            learn_all(runner.params, runner.opt_state, keys, steps, stats_list, obs, il_pairs)
        )
        timers["learn"] += time.perf_counter() - t0
        runner = runner.replace(params=params, opt_state=opt_state, env_state=state, obs=obs, privileged=vec,
                                key=keys, update=runner.update + 1, ep_return=ep_ret)  # fmt: skip
        return runner, metrics

    def chunk(runner, env_params):
        """cfg.updates_per_chunk updates; metrics stacked to (S, updates_per_chunk)."""
        out = []
        for _ in range(cfg.updates_per_chunk):
            runner, m = update(runner, env_params)
            out.append(m)
        return runner, jax.tree.map(lambda *x: jnp.stack(x, axis=1), *out)

    return CameraPPO(init=init, update=update, chunk=chunk, env_steps_per_update=cfg.num_envs * cfg.num_steps,
                     timers=timers)  # fmt: skip


def _split(keys):
    """Per-seed key split: (S, 2) -> two (S, 2) key arrays."""
    both = jax.vmap(jax.random.split)(keys)
    return both[:, 0], both[:, 1]
