"""Imitation-learning data along cousins: (observation, expert action) pairs.

The API the learner consumes:

    batch = imitation_batch(key, env, params, num_envs=256, cfg=CTGConfig(num_cousins=8))
    batch["obs"]                (N, *obs_shape) float32, the env's own observation
    batch["action_continuous"]  (N, 2) float32 [accel m/s^2, steer rad]
    batch["action_discrete"]    (N, 2) int32 RAD anchor [i_lat, i_lon]
    batch["valid"]              (N,) bool: accepted cousin and a real step of its route
    batch["ego"]                (N, 4) the ego state [x, y, yaw, speed] of each row
    batch["scenario_idx"], batch["t"]  (N,) int32 provenance
  with N = num_envs * K * (T - 1); drop rows where `valid` is False (or weight by it).
  `imitation_iterator(...)` yields shuffled minibatches of valid rows forever.

How the pairs are made: each env starts on a cousin with `env.reset_on_route` and is
stepped with the cousin's own controls by a continuous-action copy of `env`, so every
observation is exactly what the env shows a policy on that state (route = the cousin),
and replaying `action_continuous` through `kinematics.step` reproduces the cousin. The
discrete label is `actions.nearest_anchor` of the ego-frame displacement 0.5 s ahead
(the anchor horizon) along the cousin, interpolated between log steps.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim import actions as act
from jaxsim.ctg.config import CTGConfig
from jaxsim.ctg.cousins import Cousins, sample_cousins
from jaxsim.geometry import to_local


def continuous_twin(env):
    """A copy of the (unwrapped) env whose actions are continuous [accel, steer] and whose
    step is one log step: the cousin's controls and labels are per log step, so with the
    env's own `substeps` (an action held for several log steps) row t would show the ego
    at log step t * substeps beside the labels of log step t."""
    base = getattr(env, "unwrapped", env)
    config = dataclasses.replace(base.config, action_space="continuous", substeps=1)
    return type(base)(config)


def anchor_labels(states: jnp.ndarray, dt, spec: act.DiscreteActionSpec) -> jnp.ndarray:
    """RAD anchors (N - 1, 2) int32 of the displacement `spec.horizon` s ahead at every
    step of states (N, 4); targets past the end are clamped to the last state."""
    n = states.shape[0]
    f = jnp.arange(n - 1, dtype=jnp.float32) + spec.horizon / dt
    lo = jnp.clip(jnp.floor(f).astype(jnp.int32), 0, n - 1)
    hi = jnp.minimum(lo + 1, n - 1)
    w = jnp.clip(f - lo, 0.0, 1.0)[:, None]
    ahead = (1.0 - w) * states[lo, :2] + w * states[hi, :2]
    local = to_local(ahead, states[:-1, :3])  # [forward, left]
    return act.nearest_anchor(jnp.stack([local[:, 1], local[:, 0]], axis=-1), spec)


def cousin_pairs(key, env, params, scenario_idx, cousins: Cousins) -> dict:
    """Pairs along the K cousins of one env -> dict of (K, T - 1, ...) arrays."""
    twin = continuous_twin(env)
    steps = cousins.num_steps
    dt = params.bank.dt[scenario_idx]
    spec = getattr(env, "discrete_spec", act.DiscreteActionSpec())

    def one(k, states, controls, route_len, accepted):
        obs, state = twin.reset_on_route(k, params, scenario_idx, states[:steps], route_len)

        def body(carry, u):
            obs, state = carry
            obs2, state2, *_ = twin.step(k, state, u, params)
            return (obs2, state2), (obs, state.ego)

        _, (obs_seq, ego_seq) = jax.lax.scan(body, (obs, state), controls[: steps - 1])
        valid = accepted & (jnp.arange(steps - 1) < route_len - 1)
        return {
            "obs": obs_seq,
            "action_continuous": controls[: steps - 1],
            "action_discrete": anchor_labels(states, dt, spec)[: steps - 1],
            "valid": valid,
            "ego": ego_seq,
        }

    keys = jax.random.split(key, cousins.states.shape[0])
    return jax.vmap(one)(keys, cousins.states, cousins.controls, cousins.route_len, cousins.accepted)


@functools.lru_cache(maxsize=16)
def _batch_fn(env, cfg: CTGConfig, num_envs: int):
    def fn(key, params, scenario_idx):
        k_cous, k_env = jax.random.split(key)
        cousins = sample_cousins(k_cous, params, scenario_idx, cfg)
        keys = jax.random.split(k_env, num_envs)
        pairs = jax.vmap(lambda k, i, c: cousin_pairs(k, env, params, i, c))(keys, scenario_idx, cousins)
        shape = pairs["valid"].shape  # (num_envs, K, T - 1)
        pairs["scenario_idx"] = jnp.broadcast_to(scenario_idx[:, None, None], shape).astype(jnp.int32)
        pairs["t"] = jnp.broadcast_to(jnp.arange(shape[-1], dtype=jnp.int32), shape)
        return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[3:]), pairs)

    return jax.jit(fn)


def imitation_batch(key, env, params, num_envs: int, cfg: CTGConfig = CTGConfig(), scenario_idx=None) -> dict:
    """IL pairs along the cousins of `num_envs` scenarios (see the module docstring).

    scenario_idx: (num_envs,) scenarios to use; default: uniformly sampled with `key`.
    The jitted function is cached per (env, cfg, num_envs).
    """
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    k_idx, k_rest = jax.random.split(key)
    if scenario_idx is None:
        scenario_idx = jax.random.randint(k_idx, (num_envs,), 0, params.bank.ego_traj.shape[0])
    return _batch_fn(getattr(env, "unwrapped", env), cfg, num_envs)(
        k_rest, params, jnp.asarray(scenario_idx, jnp.int32)
    )


def imitation_iterator(key, env, params, num_envs: int, batch_size: int, cfg: CTGConfig = CTGConfig()):
    """Endless shuffled minibatches (dicts of numpy arrays, `batch_size` valid rows each).

    Regenerates cousins from fresh keys whenever the pool of valid rows runs low.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    rng = np.random.default_rng(int(jax.random.randint(key, (), 0, 2**31 - 1)))
    pool: dict | None = None
    empty_rounds = 0
    while True:
        key, sub = jax.random.split(key)
        data = jax.device_get(imitation_batch(sub, env, params, num_envs, cfg))
        keep = np.flatnonzero(data.pop("valid"))
        fresh = {k: v[keep] for k, v in data.items()}
        empty_rounds = 0 if len(keep) else empty_rounds + 1
        if empty_rounds >= 3:
            raise RuntimeError("no accepted cousins in 3 rounds: check the scenarios and CTGConfig limits")
        pool = fresh if pool is None else {k: np.concatenate([pool[k], fresh[k]]) for k in fresh}
        order = rng.permutation(len(pool["obs"]))
        pool = {k: v[order] for k, v in pool.items()}
        while len(pool["obs"]) >= batch_size:
            yield {k: v[:batch_size] for k, v in pool.items()}
            pool = {k: v[batch_size:] for k, v in pool.items()}
