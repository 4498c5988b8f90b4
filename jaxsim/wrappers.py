"""Composable env wrappers (brax style) over the `jaxsim.base.Env` contract: auto-reset
and batching with `jax.vmap`.

Typical stack: `VmapWrapper(AutoResetWrapper(DrivingEnv(cfg)), num_envs)`; with an
expensive reset (DAA planning), `RestartWrapper` instead of `AutoResetWrapper`. Every
wrapper overrides primitives only (`reset_state`, `transition`, ...); `reset`, `reset_to`
and `step` are derived from them in `jaxsim.base.Env`, so a start-changing wrapper
below an auto-reset wrapper (e.g. `CousinResetWrapper`) shapes every episode, not just
the first.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxsim import metrics as met
from jaxsim.base import Env, Wrapper
from jaxsim.env import EnvParams

__all__ = ["Wrapper", "AutoResetWrapper", "RestartWrapper", "RestartState", "VmapWrapper", "tree_where",
           "shared_fields", "params_axes", "env_params", "broadcast_params"]  # fmt: skip


def tree_where(cond, new, old):
    """`jnp.where(cond, new, old)` leaf by leaf; `cond` () or (B,) broadcast over each
    leaf's trailing dims (batch dims lead)."""
    cond = jnp.asarray(cond)

    def pick(a, b):
        return jnp.where(cond.reshape(cond.shape + (1,) * (jnp.ndim(a) - cond.ndim)), a, b)

    return jax.tree.map(pick, new, old)


class AutoResetWrapper(Wrapper):
    """Resets finished episodes inside `step`; the project's one auto-reset.

    The returned obs/state belong to the new episode; `info` keeps what a learner needs
    from the one that ended: `done` (terminated | truncated), `episode` (per-episode
    metrics from `jaxsim.metrics.finalize`, valid where done) and, if
    `keep_final_obs`, `final_obs` (to bootstrap values at truncation). Without it the
    step observes once instead of twice. `keep_final_state` also keeps the ended
    episode's last state as `final_state` (render_bridge's camera env renders the final
    image from it).

    Where the new episode starts is `start_state`: here a fresh `reset_state` of the
    wrapped env (a newly sampled scenario, through every start-changing wrapper below);
    `RestartWrapper` overrides it to reuse a cached start.
    """

    def __init__(self, env: Env, keep_final_obs: bool = True, keep_final_state: bool = False):
        super().__init__(env)
        self.keep_final_obs = keep_final_obs
        self.keep_final_state = keep_final_state

    # hooks: how this wrapper's state holds the wrapped env's state, and where episodes restart
    def inner(self, state):
        """The wrapped env's state inside this wrapper's state."""
        return state

    def with_inner(self, state, inner):
        return inner

    def start_state(self, key, state, params):
        """The wrapped env's state a finished episode continues from."""
        return self.env.reset_state(key, params)

    def transition(self, key, state, action, params: EnvParams):
        key_step, key_reset = jax.random.split(key)
        inner, reward, terminated, truncated, info = self.env.transition(key_step, self.inner(state), action, params)
        done = terminated | truncated
        info = dict(info, done=done, episode=met.finalize(inner.metrics))
        if self.keep_final_obs:
            info["final_obs"] = self.env.observe(inner, params)
        if self.keep_final_state:
            info["final_state"] = inner
        inner = tree_where(done, self.start_state(key_reset, state, params), inner)
        return self.with_inner(state, inner), reward, terminated, truncated, info


@struct.dataclass
class RestartState:
    """State of `RestartWrapper`: the running env state and the one its episodes start from."""

    env: Any
    first: Any


class RestartWrapper(AutoResetWrapper):
    """Auto-reset that restarts a finished episode from its cached start state (brax's
    AutoResetWrapper semantics): O(1) per step however expensive `reset` is (DAA
    planning, CTG cousins). Scenarios change only when `reset` is called again (or
    `refresh` swaps in new starts), so training loops call it every few iterations.
    Same `info` keys as AutoResetWrapper.
    """

    def inner(self, state: RestartState):
        return state.env

    def with_inner(self, state: RestartState, inner):
        return state.replace(env=inner)

    def start_state(self, key, state: RestartState, params):
        del key
        return state.first

    def refresh(self, key, state: RestartState, params: EnvParams) -> RestartState:
        """Keep the running episodes, draw new starts for the next ones."""
        return state.replace(first=self.env.reset_state(key, params))

    def reset_state(self, key, params: EnvParams) -> RestartState:
        state = self.env.reset_state(key, params)
        return RestartState(env=state, first=state)

    def reset_to_state(self, key, params: EnvParams, scenario_idx) -> RestartState:
        state = self.env.reset_to_state(key, params, scenario_idx)
        return RestartState(env=state, first=state)

    def init_state(self, key, params: EnvParams, scenario_idx, route, route_len) -> RestartState:
        state = self.env.init_state(key, params, scenario_idx, route, route_len)
        return RestartState(env=state, first=state)

    def observe(self, state: RestartState, params: EnvParams):
        return self.env.observe(state.env, params)

    def current_agents(self, state: RestartState, params: EnvParams):
        return self.env.current_agents(state.env, params)


def shared_fields(params: EnvParams) -> tuple[str, ...]:
    """EnvParams fields shared by all envs (never vmapped): the bank, plus whatever a
    subclass lists in `SHARED_FIELDS` (e.g. a precomputed cousin bank)."""
    return tuple(getattr(params, "SHARED_FIELDS", ("bank",)))


def _without_shared(params: EnvParams) -> EnvParams:
    return params.replace(**{name: None for name in shared_fields(params)})


def params_axes(params: EnvParams, batched: bool):
    """vmap in_axes for EnvParams: shared fields never mapped; the rest per env if `batched`.
    The one place the "bank is shared" rule lives."""
    axis = 0 if batched else None
    return jax.tree.map(lambda _: axis, _without_shared(params))


class VmapWrapper(Wrapper):
    """Runs `num_envs` envs in lockstep with one `jax.vmap`.

    `params` is shared by every env unless `batched_params=True`, in which case every
    field but the shared ones (the bank) carries a leading (num_envs,) axis (see
    `broadcast_params`). States, observations, actions, scenario indices and routes
    carry a leading (num_envs,) axis; `observation_shape` stays one env's.
    """

    def __init__(self, env: Env, num_envs: int, batched_params: bool = False):
        super().__init__(env)
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.num_envs = num_envs
        self.batched_params = batched_params

    def _axes(self, params):
        return params_axes(params, self.batched_params)

    def reset_state(self, key, params: EnvParams):
        keys = jax.random.split(key, self.num_envs)
        return jax.vmap(self.env.reset_state, in_axes=(0, self._axes(params)))(keys, params)

    def reset_to_state(self, key, params: EnvParams, scenario_idx):
        keys = jax.random.split(key, self.num_envs)
        return jax.vmap(self.env.reset_to_state, in_axes=(0, self._axes(params), 0))(keys, params, scenario_idx)

    def init_state(self, key, params: EnvParams, scenario_idx, route, route_len):
        keys = jax.random.split(key, self.num_envs)
        axes = (0, self._axes(params), 0, 0, 0)
        return jax.vmap(self.env.init_state, in_axes=axes)(keys, params, scenario_idx, route, route_len)

    def transition(self, key, state, action, params: EnvParams):
        keys = jax.random.split(key, self.num_envs)
        return jax.vmap(self.env.transition, in_axes=(0, 0, 0, self._axes(params)))(keys, state, action, params)

    def observe(self, state, params: EnvParams):
        return jax.vmap(self.env.observe, in_axes=(0, self._axes(params)))(state, params)

    def current_agents(self, state, params: EnvParams):
        return jax.vmap(self.env.current_agents, in_axes=(0, self._axes(params)))(state, params)

    def observation_shape(self, params: EnvParams) -> tuple[int, ...]:
        """One env's observation shape (env 0's params when they are batched)."""
        return self.env.observation_shape(env_params(params, 0) if self.batched_params else params)


def env_params(params: EnvParams, i: int) -> EnvParams:
    """Env `i`'s params out of batched ones (shared fields kept whole)."""
    rest = jax.tree.map(lambda x: x[i], _without_shared(params))
    return rest.replace(**{name: getattr(params, name) for name in shared_fields(params)})


def broadcast_params(params: EnvParams, num_envs: int) -> EnvParams:
    """Give every non-shared field a leading (num_envs,) axis, ready for per-env edits."""
    rest = jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x), (num_envs,) + jnp.shape(x)), _without_shared(params))
    return rest.replace(**{name: getattr(params, name) for name in shared_fields(params)})
