"""Closed-loop rollouts of camera policies: evaluation and DAgger data.

A rollout runs S seeds' policies on E episodes each (S * E envs rendered together):
jitted policy, jitted simulator step with freeze-after-done (a finished episode keeps
its final state and metrics), torch render. `rollout_camera` returns per-episode RAD
metrics shaped like `agents.eval_learned.rollout_learned`, so the held-out suite
(`agents.eval_learned.evaluate_suite`: log replay and every DAA behaviour, with the
same adversaries as the vector policies) evaluates camera policies unchanged.

`record=True` also keeps, at every decision, what DAgger needs: the policy's
observation, the privileged vector observation, the expert's (or a teacher policy's)
labels and whether the state was live and labellable.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from agents import policies as pol
from agents.camera_obs import commit, policy_obs, render_inputs, stack_frames
from jaxsim import metrics as met
from jaxsim.wrappers import VmapWrapper, params_axes


@functools.lru_cache(maxsize=8)
def _compiled(env, apply, discrete: bool, num_episodes: int, rig, ego: bool, sample: bool, teacher_apply):
    venv = VmapWrapper(env, num_episodes, batched_params=True)
    env_cfg = env.config

    def inputs_of(state, env_params):
        return jax.vmap(lambda st, p: render_inputs(env, st, p, rig), in_axes=(0, params_axes(env_params, True)))(
            state, env_params
        )

    @jax.jit
    def reset(keys, env_params, ids):
        vec, state = jax.vmap(venv.reset_to, in_axes=(0, None, None))(keys, env_params, ids)
        return vec, state, jax.vmap(inputs_of, in_axes=(0, None))(state, env_params)

    @jax.jit
    def act(params, images, vec, keys):
        def one(p, img, v, k):
            out = apply(p, policy_obs(img, v, env_cfg, ego))
            return pol.sample(out, k) if sample else pol.mode(out)

        return jax.vmap(one)(params, images, vec, keys)

    @jax.jit
    def labels(state, vec, env_params, teacher_params):
        from agents.dagger import expert_labels

        def one(st, v):
            axes = (None, 0, params_axes(env_params, True))
            a_disc, a_cont, ok = jax.vmap(expert_labels, in_axes=axes)(env, st, env_params)
            if teacher_apply is not None:  # a privileged vector policy labels the state instead
                a_disc = pol.mode(teacher_apply(teacher_params, v))
            return a_disc, a_cont, ok

        return jax.vmap(one)(state, vec)

    @jax.jit
    def step(keys, state, vec, done, action, env_params):
        def one(k, st, v, dn, a):
            env_a = pol.to_env_action(a, env_params.dynamics, discrete)
            vec2, st2, _, term, trunc, _ = venv.step(k, st, env_a, env_params)
            keep = lambda new, old: jnp.where(dn.reshape((-1,) + (1,) * (new.ndim - 1)), old, new)  # noqa: E731
            st2 = jax.tree.map(keep, st2, st)
            return st2, keep(vec2, v), dn | term | trunc, inputs_of(st2, env_params)

        return jax.vmap(one)(keys, state, vec, done, action)

    return reset, act, labels, step


def rollout_camera(env, camera, network, seed_params, env_params, scenario_ids, key, ego: bool = True,
                   sample: bool = False, record: bool = False, teacher=None, frames: int = 1):  # fmt: skip
    """Per-episode metrics {name: (S, E) numpy} of S seeds' camera policies on E episodes.

    env_params: batched over the E episodes (see `agents.adversaries.with_daa`).
    record: also return DAgger records {obs, privileged, action_discrete,
    action_continuous, valid}, each (S, steps * E, ...) on the device.
    teacher: optional (network, params) of a vector policy whose greedy actions replace
    the expert labels in the records. frames: env steps the policy sees (`render.frames`).
    """
    ids = jnp.asarray(scenario_ids, jnp.int32)
    e = int(ids.shape[0])
    s = jax.tree.leaves(seed_params)[0].shape[0]
    steps = -(-(env_params.bank.num_steps - 1) // env.config.substeps)
    t_apply, t_params = (teacher[0].apply, teacher[1]) if teacher is not None else (None, None)
    reset, act, labels, step = _compiled(env, network.apply, network.discrete, e, camera.rig, ego, sample, t_apply)
    keys = commit(jax.random.split(key, s))
    vec, state, inputs = reset(keys, env_params, ids)
    done = commit(jnp.zeros((s, e), bool))
    recs, images = [], None
    for t in range(steps):  # episodes freeze when done, so no stack restarts within the loop
        images = stack_frames(camera.render(inputs, n_lead=2), frames, prev=images)
        k = jax.vmap(lambda kk: jax.random.fold_in(kk, t))(keys)
        action = act(seed_params, images, vec, k)
        if record:
            a_disc, a_cont, ok = labels(state, vec, env_params, t_params)
            recs.append({"image": images, "privileged": vec, "action_discrete": a_disc, "action_continuous": a_cont,
                         "valid": ok & ~done})  # fmt: skip
        k2 = jax.vmap(lambda kk: jax.random.fold_in(kk, t + 100_003))(keys)
        state, vec, done, inputs = step(k2, state, vec, done, action, env_params)
    episodes = jax.tree.map(np.asarray, jax.vmap(jax.vmap(met.finalize))(state.metrics))
    if not record:
        return episodes
    cat = jax.tree.map(lambda *x: jnp.concatenate(x, axis=1), *recs)  # (S, steps * E, ...)
    return episodes, cat
