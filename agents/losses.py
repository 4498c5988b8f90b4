"""Loss functions and advantage estimation shared by IL and PPO (pure, jit-friendly).

Time-major arrays: `(T, N)` = rollout steps x envs; per-group arrays add a trailing 2.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def gae(rewards, values, next_values, terminated, done, gamma: float, lam: float):
    """Generalised advantage estimation over a rollout.

    Args:
      rewards, values: (T, ...) reward after step t and V(s_t).
      next_values: (T, ...) V of the state step t led to (for a finished episode, its
        final observation; ignored where `terminated`).
      terminated: (T, ...) episode ended by an event (no bootstrap).
      done: (T, ...) episode ended for any reason (advantages do not cross it).
    Returns:
      (advantages, returns), each (T, ...); returns = advantages + values.
    """
    term = terminated.astype(rewards.dtype)
    cont = 1.0 - done.astype(rewards.dtype)
    deltas = rewards + gamma * next_values * (1.0 - term) - values

    def body(acc, xs):
        delta, c = xs
        acc = delta + gamma * lam * c * acc
        return acc, acc

    _, adv = jax.lax.scan(body, jnp.zeros_like(deltas[0]), (deltas, cont), reverse=True)
    return adv, adv + values


def clipped_surrogate(logp_new, logp_old, advantages, clip):
    """PPO's clipped objective as a loss (to minimise), mean over all elements."""
    ratio = jnp.exp(logp_new - logp_old)
    unclipped = ratio * advantages
    clipped = jnp.clip(ratio, 1.0 - clip, 1.0 + clip) * advantages
    return -jnp.mean(jnp.minimum(unclipped, clipped))


def value_loss(values, returns):
    return 0.5 * jnp.mean((values - returns) ** 2)


def focal_loss(logits, targets, gamma: float = 0.0, label_smoothing: float = 0.0, weights=None, sigma: float = 0.0):
    """Focal loss (Lin et al.) over classes; gamma = 0 is cross-entropy.

    logits (..., C), targets (...) int, weights (...) or None. sigma > 0 (in classes)
    spreads the target over neighbouring classes with a Gaussian (ordinal bins such as
    RAD's anchors: predicting the next anchor is nearly right, and the soft target says
    so). Returns the weighted mean.
    """
    num = logits.shape[-1]
    logp = jax.nn.log_softmax(logits)
    onehot = ordinal_target(targets, num, sigma) if sigma else jax.nn.one_hot(targets, num)
    soft = onehot * (1.0 - label_smoothing) + label_smoothing / num
    focal = (1.0 - jnp.exp(logp)) ** gamma if gamma else 1.0
    per = -jnp.sum(soft * focal * logp, axis=-1)
    if weights is None:
        return jnp.mean(per)
    return jnp.sum(per * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def ordinal_target(targets, num: int, sigma: float):
    """(..., num) Gaussian soft labels centred on `targets` (...) int, width `sigma` classes."""
    d = jnp.arange(num) - targets[..., None]
    w = jnp.exp(-0.5 * (d / sigma) ** 2)
    return w / jnp.sum(w, axis=-1, keepdims=True)


def directional_signal(logits, action):
    """P(anchor index > taken) - P(anchor index < taken): (...,). Raising it moves the
    policy towards larger anchors (further ahead / further left) than the action taken."""
    p = jax.nn.softmax(logits)
    idx = jnp.arange(logits.shape[-1])
    a = action[..., None]
    return jnp.sum(jnp.where(idx > a, p, 0.0) - jnp.where(idx < a, p, 0.0), axis=-1)


def directional_aux_loss(logits_lat, logits_lon, action, direction, weight):
    """RAD's auxiliary directional objective (discrete heads).

    direction (..., 2) in {-1, 0, +1}: the way each group should move relative to the
    taken anchor (lateral: +1 = steer left; longitudinal: +1 = go further, i.e.
    accelerate, -1 = brake). weight (..., 2) >= 0 scales each step (e.g. |A| where the
    advantage is negative). Returns a scalar loss to minimise.
    """
    s_lat = directional_signal(logits_lat, action[..., 0])
    s_lon = directional_signal(logits_lon, action[..., 1])
    gain = direction[..., 0] * weight[..., 0] * s_lat + direction[..., 1] * weight[..., 1] * s_lon
    return -jnp.mean(gain)
