"""RAD-style PPO, PureJaxRL shape: everything from rollout to minibatch update is one
jitted function built from `lax.scan`s over vmapped envs.

    ppo = make_ppo(cfg, env, network)
    runner = ppo.init(key, params, env_params)          # per seed
    runner, metrics = ppo.update(runner, env_params)    # one rollout + PPO epochs
    runner, metrics = ppo.chunk(runner, env_params)     # cfg.updates_per_chunk updates
    runner, metrics = ppo.train(key, params, env_params)  # all cfg.num_updates updates
    jax.jit(jax.vmap(ppo.train, in_axes=(0, 0, None)))(keys, params, env_params)  # seeds

RAD's decoupling (`cfg.decoupled`): the lateral reward (static collision, position and
heading deviation) and the longitudinal reward (dynamic collision, plus optional progress
shaping) get their own value heads, GAE advantages and clip ranges, and each drives only
its own action group's ratio. Optional extras, each a config switch: RAD's auxiliary
directional losses (`aux_coef`), an IL regulariser on expert pairs (`il_coef`, on
both heads or only the lateral one, `il_heads`), and a time-to-collision shaping of the
longitudinal reward (`ttc_weight`): -ttc_weight * max(0, 1 - TTC / ttc_horizon) per
decision for the nearest agent in (or predicted to enter) the ego's path ahead and the
one behind (`ttc_shaping`), a dense warning before the sparse collision penalty (off by
default, as RAD has no such term), and RAD's RL:IL interleaving (`il_interleave` = N:
after every N PPO updates, one IL update of `num_minibatches` behaviour-cloning steps
on expert pairs; RAD uses 4:1), an alternative or complement to `il_coef`.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import optax
from flax import struct

from agents import losses
from agents import policies as pol
from agents.sharding import env_constraint
from jaxsim.metrics import finalize
from jaxsim.wrappers import VmapWrapper, params_axes


@struct.dataclass
class Runner:
    """Per-seed training state (a pytree; checkpointed whole between chunks)."""

    params: dict
    opt_state: optax.OptState
    env_state: object
    obs: jnp.ndarray  # (N, ...) current observations
    key: jax.Array
    update: jnp.ndarray  # () int32 updates done
    ep_return: jnp.ndarray  # (N,) running return of each env's episode


@struct.dataclass
class Transition:
    obs: jnp.ndarray
    action: jnp.ndarray  # (N, 2)
    logp: jnp.ndarray  # (N, 2) [lat, lon]
    values: jnp.ndarray  # (N, 2)
    next_values: jnp.ndarray  # (N, 2) V(s') (final obs where done)
    rewards: jnp.ndarray  # (N, 2) [lat, lon]
    terminated: jnp.ndarray  # (N,)
    done: jnp.ndarray  # (N,)
    direction: jnp.ndarray  # (N, 2) aux direction of this step's event (0 = none)
    privileged: jnp.ndarray | None = None  # (N, D) perception target (camera networks)


@dataclasses.dataclass(frozen=True)
class PPO:
    init: Callable
    update: Callable
    chunk: Callable
    train: Callable
    env_steps_per_update: int


def event_direction(events):
    """(2,) aux direction for one step's events: lateral -1/+1 steers back towards the path
    (away from the side the ego drifted to), longitudinal -1 brakes for a collision ahead,
    +1 speeds up for one from behind; 0 where the group's events did not fire."""
    lat_event = events.static_collision | events.position_deviation
    side = jnp.where(lat_event, -jnp.sign(events.lateral_offset), -jnp.sign(events.heading_error))
    lat = jnp.where(lat_event | events.heading_deviation, side, 0.0)
    lon = jnp.where(events.dynamic_collision, jnp.where(events.collision_ahead, -1.0, 1.0), 0.0)
    return jnp.stack([lat, lon], axis=-1)


def propagate_direction(direction, done):
    """Carry each episode's final event direction back over its earlier steps: (T, N, 2)."""

    def body(nxt, xs):
        d, dn = xs
        cur = jnp.where(jnp.any(d != 0, axis=-1, keepdims=True), d, jnp.where(dn[..., None], 0.0, nxt))
        return cur, cur

    _, out = jax.lax.scan(body, jnp.zeros_like(direction[0]), (direction, done), reverse=True)
    return out


def ttc_shaping(env, state, env_params, horizon: float):
    """() in [0, 2] for one env: sum over the lead and the follower in the ego's path
    (`jaxsim.drivers.lead_gap`) of max(0, 1 - TTC / horizon); 0 for none or an
    opening gap. The follower term matters: log-replay traffic does not react, so
    braking harder than the log did gets the ego rear-ended, and a lead-only shaping
    teaches exactly that (measured: rear-end DCR 0.04 -> 0.27)."""
    from jaxsim.drivers import lead_gap

    agents, valid, sizes = env.current_agents(state, env_params)
    size = env_params.bank.ego_size[state.scenario_idx]
    total = jnp.zeros(())
    for behind in (False, True):
        gap, closing = lead_gap(state.ego, size, agents, valid, sizes, behind=behind)
        ttc = jnp.where(closing > 0.1, jnp.maximum(gap, 0.0) / jnp.maximum(closing, 0.1), jnp.inf)
        total = total + jnp.clip(1.0 - ttc / horizon, 0.0, 1.0)
    return total


def make_optimizer(cfg):
    """Adam with global-norm clipping and (optionally) a linearly annealed learning rate."""
    total_opt_steps = max(cfg.num_updates * cfg.epochs * cfg.num_minibatches, 1)
    lr = optax.linear_schedule(cfg.lr, 0.0, total_opt_steps) if cfg.anneal_lr else cfg.lr
    return optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.adam(lr, eps=1e-5))


def make_learn(cfg, network, il_pairs=None, perception_coef: float = 0.0, il_as_argument: bool = False, mesh=None):
    """The PPO update from one collected rollout, shared by the jitted vector trainer and
    the camera trainer (whose rollout renders in torch between jitted calls).

    learn(params, opt_state, key, traj, last_values) -> (params, opt_state, key, losses):
    traj a `Transition` with leading (T, N); last_values (N, 2) = V(obs after the rollout).
    GAE per reward group, then `cfg.epochs` passes of `cfg.num_minibatches` minibatches.
    perception_coef > 0 adds the camera networks' perception loss (mean squared error
    of `PolicyOutput.perception` against `traj.privileged`). il_as_argument: the IL
    regulariser's pairs come as learn's last argument instead of `il_pairs` (large
    camera pairs must not be captured as constants of the jitted program). mesh: a
    `jax.sharding.Mesh` to pin each minibatch's rows to (data-parallel gradients, see
    `agents.sharded_ppo`); None leaves the single-device program as it was.
    """
    discrete = network.discrete
    batch = cfg.num_envs * cfg.num_steps
    mb_size = batch // cfg.num_minibatches
    opt = make_optimizer(cfg)
    if cfg.il_coef > 0 and not il_as_argument:
        if il_pairs is None:
            raise ValueError("ppo.il_coef > 0 needs IL pairs (enable il or ctg, or set ppo.il_coef=0)")
        il_pairs = il_pairs.filtered()
    apply = network.apply
    pin = env_constraint(mesh)

    def loss_fn(params, mb, il_batch):
        out = apply(params, mb["obs"])
        logp = pol.log_prob(out, mb["action"])
        adv = mb["adv"]
        adv = (adv - adv.mean(0)) / (adv.std(0) + 1e-8)
        clip_lat = cfg.clip_lat if cfg.decoupled else cfg.clip_lon
        pg_lat = losses.clipped_surrogate(logp[:, 0], mb["logp"][:, 0], adv[:, 0], clip_lat)
        pg_lon = losses.clipped_surrogate(logp[:, 1], mb["logp"][:, 1], adv[:, 1], cfg.clip_lon)
        vf = losses.value_loss(out.values, mb["ret"])
        ent = jnp.mean(jnp.sum(pol.entropy(out), axis=-1))
        total = pg_lat + pg_lon + cfg.vf_coef * vf - cfg.ent_coef * ent
        aux = jnp.zeros(())
        if cfg.aux_coef > 0 and discrete:
            weight = jax.nn.relu(-mb["adv"])  # only steps whose outcome was worse than expected
            aux = losses.directional_aux_loss(out.logits_lat, out.logits_lon, mb["action"], mb["direction"], weight)
            total = total + cfg.aux_coef * aux
        il = jnp.zeros(())
        if cfg.il_coef > 0:
            from agents.il import il_loss

            il = il_loss(network, params, il_batch.obs, il_batch.action_discrete, il_batch.action_continuous,
                         _ILLossCfg(), heads=cfg.il_heads)  # fmt: skip
            total = total + cfg.il_coef * il
        perception = jnp.zeros(())
        if perception_coef > 0:
            perception = jnp.mean(jnp.square(out.perception - mb["privileged"]))
            total = total + perception_coef * perception
        metrics = {"pg_lat": pg_lat, "pg_lon": pg_lon, "vf": vf, "entropy": ent, "aux": aux, "il": il}
        if perception_coef > 0:
            metrics["perception"] = perception
        return total, metrics

    def learn(params, opt_state, key, traj: Transition, last_values, il_data=None):
        pairs = il_data if il_as_argument else il_pairs
        nxt = jnp.concatenate([traj.values[1:], last_values[None]], axis=0)
        next_values = jnp.where(traj.done[..., None], traj.next_values, nxt)
        adv, ret = losses.gae(
            traj.rewards, traj.values, next_values, traj.terminated[..., None], traj.done[..., None],
            cfg.gamma, cfg.gae_lambda,
        )  # fmt: skip
        direction = propagate_direction(traj.direction, traj.done)
        data = {
            "obs": traj.obs,
            "action": traj.action,
            "logp": traj.logp,
            "adv": adv,
            "ret": ret,
            "direction": direction,
        }
        if perception_coef > 0:
            data["privileged"] = traj.privileged
        data = jax.tree.map(lambda x: x.reshape((batch,) + x.shape[2:]), data)

        def epoch(carry, _):
            params, opt_state, key = carry
            key, k_perm, k_il = jax.random.split(key, 3)
            perm = jax.random.permutation(k_perm, batch)
            mbs = jax.tree.map(lambda x: x[perm].reshape((cfg.num_minibatches, mb_size) + x.shape[1:]), data)
            il_keys = jax.random.split(k_il, cfg.num_minibatches)

            def minibatch(carry, xs):
                params, opt_state = carry
                mb, k = xs
                mb = pin(mb)  # rows over devices: XLA reduces the gradients across them
                il_batch = None
                if cfg.il_coef > 0:
                    idx = jax.random.randint(k, (mb_size,), 0, pairs.valid.shape[0])
                    il_batch = jax.tree.map(lambda x: x[idx], pairs)
                (_, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, mb, il_batch)
                updates, opt_state = opt.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), aux

            (params, opt_state), aux = jax.lax.scan(minibatch, (params, opt_state), (mbs, il_keys))
            return (params, opt_state, key), aux

        (params, opt_state, key), aux = jax.lax.scan(epoch, (params, opt_state, key), None, length=cfg.epochs)
        return params, opt_state, key, jax.tree.map(jnp.mean, aux)

    return learn


def make_il_phase(cfg, network, il_pairs):
    """il_phase(params, key) -> (params, mean IL loss): `cfg.num_minibatches` steps of
    Adam (lr `cfg.lr`, fresh moments each phase, so the Runner and its checkpoints keep
    their shape) on batches of PPO-minibatch size drawn from `il_pairs`."""
    if il_pairs is None:
        raise ValueError("ppo.il_interleave > 0 needs IL pairs (enable il or ctg, or set ppo.il_interleave=0)")
    from agents.il import il_loss

    pairs = il_pairs.filtered()
    mb_size = cfg.num_envs * cfg.num_steps // cfg.num_minibatches
    opt = optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.adam(cfg.lr, eps=1e-5))

    def il_phase(params, key):
        def body(carry, k):
            p, o = carry
            idx = jax.random.randint(k, (mb_size,), 0, pairs.valid.shape[0])
            b = jax.tree.map(lambda x: x[idx], pairs)
            loss, grads = jax.value_and_grad(
                lambda q: il_loss(network, q, b.obs, b.action_discrete, b.action_continuous, _ILLossCfg(), heads="both")
            )(p)
            updates, o = opt.update(grads, o, p)
            return (optax.apply_updates(p, updates), o), loss

        (params, _), losses_ = jax.lax.scan(
            body, (params, opt.init(params)), jax.random.split(key, cfg.num_minibatches)
        )
        return params, losses_.mean()

    return il_phase


def rollout_metrics(traj: Transition, stats: dict, losses_: dict) -> dict:
    """Per-update metrics: per-episode means over the episodes that ended in the rollout,
    episode count, mean rewards per group and the mean losses."""
    n_done = jnp.maximum(stats["done"].sum(), 1.0)
    metrics = {k: v.sum() / n_done for k, v in stats.items() if k != "done"}
    metrics["episodes"] = stats["done"].sum()
    metrics["reward_lat"] = traj.rewards[..., 0].mean()
    metrics["reward_lon"] = traj.rewards[..., 1].mean()
    metrics.update(losses_)
    return metrics


EPISODE_KEYS = ("dynamic_collision", "static_collision", "position_deviation", "heading_deviation", "route_completion")


def episode_stats(done, ep_ret, episode) -> dict:
    """Per-env rollout statistics of one step: values where an episode ended, else 0."""
    return {
        "done": done.astype(jnp.float32),
        "return": jnp.where(done, ep_ret, 0.0),
        **{k: jnp.where(done, episode[k], 0.0) for k in EPISODE_KEYS},
    }


def make_ppo(cfg, env, network, batched_params: bool = False, il_pairs=None, mesh=None) -> PPO:
    """Build the PPO functions for `env` (a DrivingEnv) and `network` (agents.networks.Network).

    il_pairs: `agents.il.Pairs` for the IL regulariser (needed when cfg.il_coef > 0).
    mesh: shard the env batch over this device mesh (`agents.sharded_ppo` jits it).
    """
    # Auto-reset from a pool drawn once per rollout (not at every step as AutoResetWrapper
    # does): a reset with DAA plans adversary candidates, far dearer than a step. An env
    # that finishes twice within one rollout restarts from the same drawn episode start.
    venv = VmapWrapper(env, cfg.num_envs, batched_params)
    discrete = network.discrete
    batch = cfg.num_envs * cfg.num_steps
    opt = make_optimizer(cfg)
    learn = make_learn(cfg, network, il_pairs, mesh=mesh)
    il_phase = make_il_phase(cfg, network, il_pairs) if cfg.il_interleave > 0 else None
    pin = env_constraint(mesh)
    apply = network.apply

    def init(key, params, env_params) -> Runner:
        k_reset, key = jax.random.split(key)
        obs, state = venv.reset(k_reset, env_params)
        return Runner(params, opt.init(params), state, obs, key, jnp.zeros((), jnp.int32), jnp.zeros((cfg.num_envs,)))

    def rollout(runner: Runner, env_params):
        key, k_pool = jax.random.split(runner.key)
        pool_obs, pool_state = venv.reset(k_pool, env_params)

        def step(carry, _):
            params, state, obs, key, ep_ret = carry
            key, k_act, k_env = jax.random.split(key, 3)
            out = apply(params, obs)
            action = pol.sample(out, k_act)
            env_action = pol.to_env_action(action, env_params.dynamics, discrete)
            final_obs, final_state, _, term, trunc, info = venv.step(k_env, state, env_action, env_params)
            done = term | trunc
            episode = jax.vmap(finalize)(final_state.metrics)
            pick = lambda r, s: jnp.where(done.reshape((-1,) + (1,) * (s.ndim - 1)), r, s)  # noqa: E731
            state2, obs2 = pin((jax.tree.map(pick, pool_state, final_state), pick(pool_obs, final_obs)))
            rewards = step_rewards(cfg, env, info, final_state, env_params, batched_params)
            final_v = apply(params, final_obs).values if cfg.bootstrap_truncated else jnp.zeros_like(out.values)
            ep_ret = ep_ret + rewards[:, 0] + rewards[:, 1] * cfg.decoupled
            stats = episode_stats(done, ep_ret, episode)
            ep_ret = jnp.where(done, 0.0, ep_ret)
            tr = Transition(
                obs=obs, action=action, logp=pol.log_prob(out, action), values=out.values,
                next_values=final_v, rewards=rewards, terminated=term, done=done,
                direction=jax.vmap(event_direction)(info["events"]),
            )  # fmt: skip
            return (params, state2, obs2, key, ep_ret), (tr, stats)

        carry = (runner.params, runner.env_state, runner.obs, key, runner.ep_return)
        (_, state, obs, key, ep_ret), (traj, stats) = jax.lax.scan(step, carry, None, length=cfg.num_steps)
        return runner.replace(env_state=state, obs=obs, key=key, ep_return=ep_ret), traj, stats

    def update(runner: Runner, env_params):
        runner, traj, stats = rollout(runner, env_params)
        last_v = apply(runner.params, runner.obs).values
        params, opt_state, key, aux = learn(runner.params, runner.opt_state, runner.key, traj, last_v)
        if il_phase is not None:  # RAD's interleaving: an IL update after every il_interleave-th PPO update
            key, k_il = jax.random.split(key)
            due = runner.update % cfg.il_interleave == cfg.il_interleave - 1
            params, il_l = jax.lax.cond(due, il_phase, lambda p, k: (p, jnp.zeros(())), params, k_il)
            aux = dict(aux, il_interleave=il_l)
        runner = runner.replace(params=params, opt_state=opt_state, key=key, update=runner.update + 1)
        return runner, rollout_metrics(traj, stats, aux)

    def chunk(runner, env_params):
        return jax.lax.scan(lambda r, _: update(r, env_params), runner, None, length=cfg.updates_per_chunk)

    def train(key, params, env_params):
        runner = init(key, params, env_params)
        return jax.lax.scan(lambda r, _: update(r, env_params), runner, None, length=cfg.num_updates)

    return PPO(init=init, update=update, chunk=chunk, train=train, env_steps_per_update=batch)


def step_rewards(cfg, env, info, final_state, env_params, batched_params: bool):
    """(N, 2) [lateral, longitudinal] rewards of a batched step: the env's RAD rewards, the
    optional TTC shaping on the longitudinal group, summed into both when not decoupled."""
    r_lon = info["reward_lon"]
    if cfg.ttc_weight > 0:
        pen = jax.vmap(lambda st, p: ttc_shaping(env, st, p, cfg.ttc_horizon),
                       in_axes=(0, params_axes(env_params, batched_params)))(final_state, env_params)  # fmt: skip
        r_lon = r_lon - cfg.ttc_weight * pen
    rewards = jnp.stack([info["reward_lat"], r_lon], axis=-1)
    if not cfg.decoupled:
        rewards = jnp.broadcast_to(rewards.sum(-1, keepdims=True), rewards.shape)
    return rewards


@dataclasses.dataclass(frozen=True)
class _ILLossCfg:
    """The IL regulariser uses plain cross-entropy on anchors (NLL for the continuous head)."""

    loss: str = "ce"
    focal_gamma: float = 0.0
    label_smoothing: float = 0.0
