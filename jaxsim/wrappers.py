"""Composable env wrappers (brax style): auto-reset and batching with `jax.vmap`.

Typical stack: `VmapWrapper(AutoResetWrapper(DrivingEnv(cfg)), num_envs)`; with an
expensive reset (DAA planning), `RestartWrapper` instead of `AutoResetWrapper`.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxsim import metrics as met
from jaxsim.env import EnvParams


class Wrapper:
    """Forwards everything to the wrapped env."""

    def __init__(self, env):
        self.env = env

    def __getattr__(self, name):
        return getattr(self.env, name)

    @property
    def unwrapped(self):
        return getattr(self.env, "unwrapped", self.env)


class AutoResetWrapper(Wrapper):
    """Resets finished episodes inside `step` (on a newly sampled scenario).

    The returned obs/state belong to the new episode; `info` keeps what a learner needs
    from the one that ended: `done` (terminated | truncated), `episode` (per-episode
    metrics from `jaxsim.metrics.finalize`, valid where done) and, if
    `keep_final_obs`, `final_obs` (to bootstrap values at truncation). Without it the
    step observes once instead of twice.
    """

    def __init__(self, env, keep_final_obs: bool = True):
        super().__init__(env)
        self.keep_final_obs = keep_final_obs

    def reset(self, key, params: EnvParams):
        return self.env.reset(key, params)

    def step(self, key, state, action, params: EnvParams):
        key_step, key_reset = jax.random.split(key)
        state, reward, terminated, truncated, info = self.env.transition(key_step, state, action, params)
        done = terminated | truncated
        info = dict(info, done=done, episode=met.finalize(state.metrics))
        if self.keep_final_obs:
            info["final_obs"] = self.env.observe(state, params)
        reset_state = self.env.reset_state(key_reset, params)
        state = jax.tree.map(lambda r, s: jnp.where(done, r, s), reset_state, state)
        return self.env.observe(state, params), state, reward, terminated, truncated, info


@struct.dataclass
class RestartState:
    """State of `RestartWrapper`: the running env state and the one its episodes start from."""

    env: Any
    first: Any


class RestartWrapper(Wrapper):
    """Auto-reset that restarts a finished episode from its cached start state (brax's
    AutoResetWrapper semantics): O(1) per step however expensive `reset` is (DAA
    planning, CTG cousins). Scenarios change only when `reset` is called again, so
    training loops call it every few iterations. Same `info` keys as AutoResetWrapper.
    """

    def __init__(self, env, keep_final_obs: bool = True):
        super().__init__(env)
        self.keep_final_obs = keep_final_obs

    def reset(self, key, params: EnvParams):
        obs, state = self.env.reset(key, params)
        return obs, RestartState(env=state, first=state)

    def reset_to(self, key, params: EnvParams, scenario_idx):
        obs, state = self.env.reset_to(key, params, scenario_idx)
        return obs, RestartState(env=state, first=state)

    def step(self, key, state: RestartState, action, params: EnvParams):
        inner, reward, terminated, truncated, info = self.env.transition(key, state.env, action, params)
        done = terminated | truncated
        info = dict(info, done=done, episode=met.finalize(inner.metrics))
        if self.keep_final_obs:
            info["final_obs"] = self.env.observe(inner, params)
        inner = jax.tree.map(lambda r, s: jnp.where(done, r, s), state.first, inner)
        return self.env.observe(inner, params), state.replace(env=inner), reward, terminated, truncated, info


def shared_fields(params: EnvParams) -> tuple[str, ...]:
    """EnvParams fields shared by all envs (never vmapped): the bank, plus whatever a
    subclass lists in `SHARED_FIELDS` (e.g. a precomputed cousin bank)."""
    return tuple(getattr(params, "SHARED_FIELDS", ("bank",)))


def _without_shared(params: EnvParams) -> EnvParams:
    return params.replace(**{name: None for name in shared_fields(params)})


def params_axes(params: EnvParams, batched: bool):
    """vmap in_axes for EnvParams: shared fields never mapped; the rest per env if `batched`."""
    axis = 0 if batched else None
    return jax.tree.map(lambda _: axis, _without_shared(params))


class VmapWrapper(Wrapper):
    """Runs `num_envs` envs in lockstep with one `jax.vmap`.

    `params` is shared by every env unless `batched_params=True`, in which case every
    field but `bank` carries a leading (num_envs,) axis (see `broadcast_params`).
    """

    def __init__(self, env, num_envs: int, batched_params: bool = False):
        super().__init__(env)
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.num_envs = num_envs
        self.batched_params = batched_params

    def reset(self, key, params: EnvParams):
        keys = jax.random.split(key, self.num_envs)
        return jax.vmap(self.env.reset, in_axes=(0, params_axes(params, self.batched_params)))(keys, params)

    def reset_to(self, key, params: EnvParams, scenario_idx):
        keys = jax.random.split(key, self.num_envs)
        axes = (0, params_axes(params, self.batched_params), 0)
        return jax.vmap(self.env.reset_to, in_axes=axes)(keys, params, scenario_idx)

    def step(self, key, state, action, params: EnvParams):
        keys = jax.random.split(key, self.num_envs)
        axes = (0, 0, 0, params_axes(params, self.batched_params))
        return jax.vmap(self.env.step, in_axes=axes)(keys, state, action, params)


def broadcast_params(params: EnvParams, num_envs: int) -> EnvParams:
    """Give every non-shared field a leading (num_envs,) axis, ready for per-env edits."""
    rest = jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x), (num_envs,) + jnp.shape(x)), _without_shared(params))
    return rest.replace(**{name: getattr(params, name) for name in shared_fields(params)})
