"""Imitation learning (the paper's IL stage): behaviour cloning on expert-log pairs.

Pairs: at every logged step t of a reference path (the expert log, or a CTG cousin) the
env is put on the path (`expert_state`) and observed; the label is the path's 0.5 s-ahead
displacement in the ego frame snapped to the nearest RAD anchor (discrete heads) and the
recovered bicycle controls, normalised to [-1, 1] (continuous head).

Training is chunked so the trainer can checkpoint between chunks: `make_il(...)` gives
`init(key, params) -> ILState` and `chunk(state) -> (state, metrics)`, both per seed
(vmap them for several seeds). Loss: focal or cross-entropy per anchor head.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from agents import losses
from agents import policies as pol
from jaxsim import actions as act
from jaxsim.geometry import to_local
from jaxsim.kinematics import clip_controls, expert_controls

HORIZON_STEPS = 5  # RAD's 0.5 s anchor horizon at 10 Hz


@struct.dataclass
class Pairs:
    """Imitation pairs, (M, ...) each: obs (an array, or a dict of arrays for camera
    observations), action_discrete (M, 2) int32 [i_lat, i_lon], action_continuous (M, 2)
    normalised [accel, steer], valid (M,) bool; privileged (M, D) the vector observation
    when the perception head is trained (camera pairs), else None."""

    obs: jnp.ndarray
    action_discrete: jnp.ndarray
    action_continuous: jnp.ndarray
    valid: jnp.ndarray
    privileged: jnp.ndarray | None = None

    def filtered(self) -> "Pairs":
        """Keep valid pairs only (host-side, shapes change)."""
        keep = np.asarray(self.valid)
        return jax.tree.map(lambda x: jnp.asarray(np.asarray(x)[keep]), self)

    @staticmethod
    def concat(parts: list["Pairs"]) -> "Pairs":
        return jax.tree.map(lambda *xs: jnp.concatenate(xs), *parts)


def normalise_controls(controls, dyn):
    """Inverse of `jaxsim.actions.normalized_to_controls`."""
    c = clip_controls(controls, dyn)
    accel = jnp.where(c[..., 0] >= 0, c[..., 0] / dyn.max_accel, c[..., 0] / dyn.max_decel)
    return jnp.stack([accel, c[..., 1] / dyn.max_steer], axis=-1)


def expert_pair(env, params, idx, t, route, route_len):
    """(obs, action_discrete (2,), action_continuous (2,), valid) at step t of `route` (T, 4)."""
    bank, dyn = params.bank, params.dynamics
    _, st = env.reset_on_route(jax.random.PRNGKey(0), params, idx, route, route_len)
    dt = bank.dt[idx]
    ctrl = clip_controls(expert_controls(route, dt, dyn), dyn)  # (T-1, 2)
    prev = jnp.maximum(t - 1, 0)
    v, v_prev = route[t, 3], route[prev, 3]
    yaw_rate = jnp.arctan2(jnp.sin(route[t, 2] - route[prev, 2]), jnp.cos(route[t, 2] - route[prev, 2])) / dt
    accel = jnp.where(t > 0, jnp.stack([(v - v_prev) / dt, v * yaw_rate]), 0.0)
    st = st.replace(t=t, ego=route[t], controls=jnp.where(t > 0, ctrl[prev], 0.0), accel=accel)
    obs = env.observe(st, params)
    ahead = route[jnp.minimum(t + HORIZON_STEPS, route_len - 1), :2]
    local = to_local(ahead, route[t, :3])
    a_disc = act.nearest_anchor(jnp.stack([local[1], local[0]]), env.discrete_spec)
    a_cont = normalise_controls(ctrl[jnp.minimum(t, ctrl.shape[0] - 1)], dyn)
    valid = t + HORIZON_STEPS <= route_len - 1
    return obs, a_disc, a_cont, valid


def expert_pairs(env, params, scenario_ids, routes=None, route_lens=None, stride: int = 1) -> Pairs:
    """Pairs at every `stride`-th step of each scenario's expert log (or of `routes` (E, T, 4))."""
    ids = jnp.asarray(scenario_ids, jnp.int32)
    bank = params.bank
    if routes is None:
        routes = bank.ego_traj[ids]
        route_lens = jnp.sum(bank.ego_valid[ids], axis=-1).astype(jnp.int32)
    ts = jnp.arange(0, bank.num_steps - 1, stride, dtype=jnp.int32)

    # params travel as an argument so the bank is not baked into the program as a constant
    build = jax.jit(lambda p, ids, routes, lens: jax.vmap(
        lambda i, r, n: jax.vmap(lambda t: expert_pair(env, p, i, t, r, n))(ts)
    )(ids, routes, lens))  # fmt: skip
    obs, a_d, a_c, valid = build(params, ids, routes, route_lens)
    flat = lambda x: x.reshape((-1,) + x.shape[2:])  # noqa: E731
    return Pairs(obs=flat(obs), action_discrete=flat(a_d), action_continuous=flat(a_c), valid=flat(valid))


@struct.dataclass
class ILState:
    params: dict
    opt_state: optax.OptState
    key: jax.Array
    step: jnp.ndarray


def il_loss(network, params, obs, a_disc, a_cont, cfg, heads: str = "both", privileged=None, perception_coef=0.0):
    """Behaviour-cloning loss for a batch: focal/CE per anchor head, or Gaussian NLL.

    heads: "both", or "lat" to imitate only the lateral group (steer), leaving the
    longitudinal group to RL (PPO's IL regulariser). perception_coef > 0 adds the
    camera networks' perception loss: mean squared error of the predicted privileged
    observation against `privileged` (..., D)."""
    out = network.apply(params, obs)
    extra = 0.0
    if perception_coef > 0:
        extra = perception_coef * jnp.mean(jnp.square(out.perception - privileged))
    if network.discrete:
        gamma = cfg.focal_gamma if cfg.loss == "focal" else 0.0
        sigma = getattr(cfg, "label_sigma", 0.0)
        lat = losses.focal_loss(out.logits_lat, a_disc[..., 0], gamma, cfg.label_smoothing, sigma=sigma)
        lon = losses.focal_loss(out.logits_lon, a_disc[..., 1], gamma, cfg.label_smoothing, sigma=sigma)
        return lat + lon * (heads == "both") + extra
    lp = pol.log_prob(out, a_cont)  # (..., 2) [lateral, longitudinal]
    return -jnp.mean(lp[..., 0] + lp[..., 1] * (heads == "both")) + extra


def make_il(cfg, network, pairs: Pairs | None = None, perception_coef: float = 0.0):
    """`init(key, params) -> ILState`, `chunk(state, data=None, base=None) -> (state, metrics)`
    running `cfg.steps_per_chunk` optimiser steps on minibatches drawn from (valid) `pairs`
    (or from `base`, the same given per call: large camera pairs must not be captured as
    constants of the jitted program), and from `data` (all-valid Pairs given per call,
    e.g. per seed after DAgger rounds).
    perception_coef > 0 also trains the perception head on the pairs' `privileged`."""
    if pairs is not None:
        pairs = pairs.filtered()
        if int(pairs.valid.shape[0]) == 0:
            raise ValueError("imitation learning found no valid expert pairs")
    opt = optax.adamw(optax.cosine_decay_schedule(cfg.lr, max(cfg.steps, 1), 0.05), weight_decay=cfg.weight_decay)

    def init(key, params) -> ILState:
        return ILState(params=params, opt_state=opt.init(params), key=key, step=jnp.zeros((), jnp.int32))

    def one_step(state: ILState, data: Pairs | None, base: Pairs | None):
        key, k = jax.random.split(state.key)
        batch = _draw(k, pairs if base is None else base, data, cfg.batch_size, getattr(cfg, "dagger_mix", 0.0))
        loss, grads = jax.value_and_grad(il_loss, argnums=1)(
            network, state.params, batch.obs, batch.action_discrete, batch.action_continuous, cfg,
            privileged=batch.privileged, perception_coef=perception_coef,
        )  # fmt: skip
        updates, opt_state = opt.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return ILState(params=params, opt_state=opt_state, key=key, step=state.step + 1), loss

    def chunk(state: ILState, data: Pairs | None = None, base: Pairs | None = None):
        if pairs is None and data is None and base is None:
            raise ValueError("make_il without pairs: pass `data` or `base` to chunk")
        state, loss = jax.lax.scan(lambda s, _: one_step(s, data, base), state, None, length=cfg.steps_per_chunk)
        return state, {"il_loss": jnp.mean(loss)}

    return init, chunk


def _draw(key, base: Pairs | None, extra: Pairs | None, n: int, mix: float = 0.0) -> Pairs:
    """n pairs from `base` and `extra` (either may be None): uniformly from their union,
    or, with mix > 0, each pair from `extra` with probability `mix`."""
    if extra is None or base is None:
        data = base if extra is None else extra
        return jax.tree.map(lambda x: x[jax.random.randint(key, (n,), 0, data.valid.shape[0])], data)
    mb, me = base.valid.shape[0], extra.valid.shape[0]
    k_idx, k_mix = jax.random.split(key)
    idx = jax.random.randint(k_idx, (n,), 0, mb + me)
    if mix > 0:  # re-draw the index within the chosen set
        from_base = jax.random.uniform(k_mix, (n,)) >= mix
        u = jax.random.uniform(k_idx, (n,))
        idx = jnp.where(from_base, (u * mb).astype(jnp.int32), mb + (u * me).astype(jnp.int32))
        idx = jnp.clip(idx, 0, mb + me - 1)
    from_base = idx < mb

    def pick(b, e):
        sel = from_base.reshape((-1,) + (1,) * (b.ndim - 1))
        return jnp.where(sel, b[jnp.minimum(idx, mb - 1)], e[jnp.maximum(idx - mb, 0)])

    return jax.tree.map(pick, base, extra)


def accuracy(network, params, pairs: Pairs, batch: int = 4096) -> dict:
    """Top-1 and within-one-anchor accuracy of the discrete heads on valid pairs (host floats);
    for a continuous head, the mean absolute error of the normalised controls."""
    pairs = pairs.filtered()
    fn = jax.jit(network.apply)
    sums = np.zeros(5)
    for s in range(0, int(pairs.valid.shape[0]), batch):
        out = fn(params, jax.tree.map(lambda x: x[s : s + batch], pairs.obs))
        if network.discrete:
            pred = np.asarray(pol.mode(out))
            tgt = np.asarray(pairs.action_discrete[s : s + batch])
            err = np.abs(pred - tgt)
            sums += [
                (err[:, 0] == 0).sum(),
                (err[:, 1] == 0).sum(),
                (err[:, 0] <= 1).sum(),
                (err[:, 1] <= 1).sum(),
                len(tgt),
            ]
        else:
            e = np.abs(np.asarray(out.mean) - np.asarray(pairs.action_continuous[s : s + batch]))
            sums += [e[:, 1].sum(), e[:, 0].sum(), 0, 0, len(e)]
    n = max(sums[4], 1)
    if network.discrete:
        return {"acc_lat": sums[0] / n, "acc_lon": sums[1] / n, "acc1_lat": sums[2] / n, "acc1_lon": sums[3] / n}
    return {"mae_steer": sums[0] / n, "mae_accel": sums[1] / n}
