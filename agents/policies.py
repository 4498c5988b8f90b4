"""Action distributions over `PolicyOutput` and learned policies for evaluation.

Group convention (RAD's decoupling): every per-group quantity has a trailing axis of 2,
`[lateral, longitudinal]`. Discrete actions are anchor indices `[i_lat, i_lon]` (int32);
continuous actions are normalised `[accel, steer]` in R^2 (the env gets them mapped by
`to_env_action`), so the lateral group is the steer dimension and the longitudinal group
the acceleration dimension.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from agents.networks import PolicyOutput
from jaxsim.actions import normalized_to_controls

_LOG_2PI = jnp.log(2.0 * jnp.pi)


def sample(out: PolicyOutput, key: jax.Array) -> jnp.ndarray:
    """One action per batch element: int32 (..., 2) or float32 (..., 2)."""
    if out.logits_lat is not None:
        k1, k2 = jax.random.split(key)
        return jnp.stack(
            [jax.random.categorical(k1, out.logits_lat), jax.random.categorical(k2, out.logits_lon)], axis=-1
        ).astype(jnp.int32)
    return out.mean + jnp.exp(out.log_std) * jax.random.normal(key, out.mean.shape)


def mode(out: PolicyOutput) -> jnp.ndarray:
    """Most likely action (deterministic evaluation)."""
    if out.logits_lat is not None:
        return jnp.stack([jnp.argmax(out.logits_lat, -1), jnp.argmax(out.logits_lon, -1)], axis=-1).astype(jnp.int32)
    return out.mean


def log_prob(out: PolicyOutput, action: jnp.ndarray) -> jnp.ndarray:
    """Per-group log-probabilities (..., 2) [lateral, longitudinal] of `action`."""
    if out.logits_lat is not None:
        lp_lat = jnp.take_along_axis(jax.nn.log_softmax(out.logits_lat), action[..., 0:1], axis=-1)[..., 0]
        lp_lon = jnp.take_along_axis(jax.nn.log_softmax(out.logits_lon), action[..., 1:2], axis=-1)[..., 0]
        return jnp.stack([lp_lat, lp_lon], axis=-1)
    z = (action - out.mean) * jnp.exp(-out.log_std)
    lp = -0.5 * (z * z + _LOG_2PI) - out.log_std  # (..., 2) over [accel, steer]
    return lp[..., ::-1]  # -> [steer (lateral), accel (longitudinal)]


def entropy(out: PolicyOutput) -> jnp.ndarray:
    """Per-group entropies (..., 2) [lateral, longitudinal]."""
    if out.logits_lat is not None:

        def ent(logits):
            logp = jax.nn.log_softmax(logits)
            return -jnp.sum(jnp.exp(logp) * logp, axis=-1)

        return jnp.stack([ent(out.logits_lat), ent(out.logits_lon)], axis=-1)
    return (0.5 * (1.0 + _LOG_2PI) + out.log_std)[..., ::-1]


def to_env_action(action: jnp.ndarray, dynamics, discrete: bool) -> jnp.ndarray:
    """What `DrivingEnv.step` takes: anchor indices as they are, or controls from normalised values."""
    if discrete:
        return action
    return normalized_to_controls(action, dynamics)


def make_policy(network, params, deterministic: bool = True):
    """Per-env policy `policy(key, obs, state, env_params) -> env action` for `agents.evaluation`."""

    def policy(key, obs, state, env_params):
        out = network.apply(params, obs)
        a = mode(out) if deterministic else sample(out, key)
        return to_env_action(a, env_params.dynamics, network.discrete)

    return policy
