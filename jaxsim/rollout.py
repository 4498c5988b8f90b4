"""The one closed-loop rollout (brax `generate_unroll`, Waymax `rollout`): unroll a
policy for a fixed number of steps in one `lax.scan`, freezing each episode once it
ends so it contributes exactly its own steps. Evaluation, checkpoint evaluation,
DAgger, episode videos and adversary search all run on it.

    final, records = unroll(env, params, policy, key, obs, state, num_steps, record)
    metrics = jax.vmap(jaxsim.metrics.finalize)(final.state.metrics)

`env` is any `jaxsim.base.Env` without auto-reset (one env, or a `VmapWrapper`);
`policy(key, obs, state) -> action` in the env's batch. Every step splits its key into
(policy key, step key). `record(step: Step) -> pytree` is stacked along a leading
(num_steps,) axis; `Step.done` marks steps after the episode's end (their values are
the frozen ones, so mask them).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxsim.wrappers import VmapWrapper, params_axes, tree_where


class Carry(NamedTuple):
    """Rollout state: the observation and env state (frozen once done) and `done`."""

    obs: Any
    state: Any
    done: jnp.ndarray


class Step(NamedTuple):
    """What `record` sees at each step: the carry before it, the action, and the step's
    outputs (`next_obs`/`next_state` already frozen where `done`)."""

    obs: Any
    state: Any
    action: Any
    reward: jnp.ndarray
    terminated: jnp.ndarray
    truncated: jnp.ndarray
    info: dict
    next_obs: Any
    next_state: Any
    done: jnp.ndarray  # the episode had ended before this step


def episode_steps(env, params) -> int:
    """Env steps that cover any episode of `params.bank`: ceil((T - 1) / substeps)."""
    return -(-(int(params.bank.num_steps) - 1) // env.config.substeps)


def unroll(env, params, policy: Callable, key, obs, state, num_steps: int, record: Callable | None = None):
    """Unroll `num_steps` steps from (obs, state), freezing finished episodes.

    Returns (final `Carry`, records stacked over steps, or None without `record`).
    Differentiable and jittable; call it inside `jax.jit`.
    """
    done0 = jnp.zeros(jnp.shape(state.t), bool)

    def body(carry: Carry, k):
        k_act, k_step = jax.random.split(k)
        action = policy(k_act, carry.obs, carry.state)
        obs2, state2, reward, term, trunc, info = env.step(k_step, carry.state, action, params)
        obs2 = tree_where(carry.done, carry.obs, obs2)
        state2 = tree_where(carry.done, carry.state, state2)
        out = None
        if record is not None:
            out = record(Step(carry.obs, carry.state, action, reward, term, trunc, info, obs2, state2, carry.done))
        return Carry(obs2, state2, carry.done | term | trunc), out

    return jax.lax.scan(body, Carry(obs, state, done0), jax.random.split(key, num_steps))


def per_env_policy(policy: Callable, venv: VmapWrapper, params) -> Callable:
    """A batched `policy(key, obs, state)` for `venv` from a per-env scripted
    `policy(key, obs, state, params)` (`jaxsim.policies`): one key per env."""
    axes = (0, 0, 0, params_axes(params, venv.batched_params))

    def batched(key, obs, state):
        return jax.vmap(policy, in_axes=axes)(jax.random.split(key, venv.num_envs), obs, state, params)

    return batched


def episode_metrics(env, params, policy: Callable, scenario_ids, key, num_steps: int, batched_params: bool = False):
    """Per-episode metrics (dict of (E,) arrays, `jaxsim.metrics.finalize`) of one episode
    on each of `scenario_ids` (E,): reset with `key`'s first half, unroll with its second.

    `env` is a per-env env (no auto-reset); `policy(venv) -> batched policy` builds the
    policy for the `VmapWrapper` this makes (E envs; `params` batched over them if
    `batched_params`). Jittable."""
    from jaxsim import metrics as met

    ids = jnp.asarray(scenario_ids, jnp.int32)
    venv = VmapWrapper(env, int(ids.shape[0]), batched_params)
    k_reset, k_run = jax.random.split(key)
    obs, state = venv.reset_to(k_reset, params, ids)
    final, _ = unroll(venv, params, policy(venv), k_run, obs, state, num_steps)
    return jax.vmap(met.finalize)(final.state.metrics)
