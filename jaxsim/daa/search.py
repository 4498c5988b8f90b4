"""Gradient-based adversary search: per env, optimise the continuous DAA knobs with
`jax.grad` through the closed-loop rollout (adversary controller, bicycle kinematics,
ego policy) to bring the adversary into contact with the ego.

Objective per env (minimised): the soft minimum over the episode of the separating-axis
clearance between the ego and adversary boxes (`geometry.box_clearance`, m, < 0 when
they overlap), temperature `temperature` m. Knobs are optimised in [0, 1]-normalised
coordinates of their ranges (lo, hi) and projected back after each Adam step, so every
iterate is a knob set the sampler could have drawn; the reset-time trajectory check
(`daa.check`) still accepts or rejects it, and only accepted adversaries count.
Feasibility is enforced structurally (the controller saturates at the dynamics limits),
not by a penalty. The trigger knobs act through a step function and get no gradient;
they move only through the random start.

Counting rollouts: random search evaluates R sampled knob sets; gradient search spends
its R rollouts as one forward + backward pass per iterate (each iterate's forward pass is
itself a rollout whose collision counts). A backward pass costs ~2-3x a forward one.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxsim.daa.check import Reason
from jaxsim.daa.params import DAAConfig, KnobRanges, Knobs, sample_knobs
from jaxsim.geometry import box_clearance, box_overlap, to_local
from jaxsim.kinematics import expert_controls
from jaxsim.rollout import unroll
from jaxsim.wrappers import params_axes

FAR = 100.0  # m, clearance used where there is no adversary

# Broad ranges for search studies: most random draws are harmless, so finding the
# dangerous corner of the space is the search's job.
SEARCH_CONFIG = DAAConfig(
    weights=(0.0, 1.0, 1.0, 1.0, 0.0, 0.0),
    cut_in=KnobRanges(
        trigger_gap=(10.0, 25.0), lat_duration=(1.5, 4.0), final_gap=(0.0, 20.0), speed_offset=(-3.0, 3.0)
    ),
    hard_brake=KnobRanges(trigger_gap=(5.0, 40.0), trigger_ttc=(0.5, 4.0), decel=(0.5, 8.0), speed_offset=(0.0, 0.0)),
    fallback="spawn",
    budget=1,
)


def expert_policy(state, params):
    """Expert replay in the continuous action space: the controls recovered from the log."""
    bank, i = params.bank, state.scenario_idx
    u = expert_controls(bank.ego_traj[i], bank.dt[i], params.dynamics)
    return u[jnp.minimum(state.t, u.shape[0] - 1)]


def yielding_policy(env, headway: float = 1.0, min_gap: float = 3.0):
    """Expert replay that brakes at full deceleration while a vehicle overlapping its path
    laterally is within `min_gap` + `headway` * speed ahead (a simple defensive driver)."""

    def policy(state, params):
        u = expert_policy(state, params)
        agents, valid, sizes = env.current_agents(state, params)
        ego_size = params.bank.ego_size[state.scenario_idx]
        rel = to_local(agents[:, :2], state.ego[None, :3])
        gap = rel[:, 0] - 0.5 * (ego_size[0] + sizes[:, 0])
        in_path = jnp.abs(rel[:, 1]) < 0.5 * (ego_size[1] + sizes[:, 1]) + 0.3
        danger = jnp.any(valid & in_path & (gap > -1.0) & (gap < min_gap + headway * state.ego[3]))
        return jnp.where(danger, jnp.stack([-params.dynamics.max_decel, u[1]]), u)

    return policy


def episode(env, params, idx, key, policy=expert_policy, temperature: float = 0.5):
    """One closed-loop episode with DAA (continuous action space env).

    Returns (soft_clearance () m, hit () bool: the ego touched an accepted adversary before
    any other event, accepted () bool: the trajectory check passed).
    """
    obs, s0 = env.reset_to(key, params, idx)

    def record(st):
        s2 = st.next_state
        ego_box = jnp.concatenate([s2.ego[:3], params.bank.ego_size[idx]])
        adv_box = jnp.concatenate([s2.adv.pose[:3], s2.adv.size])
        present = s2.adv.active & s2.adv.visible & ~st.done
        c = jnp.where(present, box_clearance(ego_box, adv_box), FAR)
        return c, present & st.info["events"].dynamic_collision & box_overlap(ego_box, adv_box)

    steps = params.bank.ego_traj.shape[1] - 1
    _, (clear, hits) = unroll(env, params, lambda k, obs, s: policy(s, params), key, obs, s0, steps, record)
    soft = -temperature * jax.nn.logsumexp(-clear / temperature)
    accepted = s0.adv.status == Reason.OK
    return soft, jnp.any(hits) & accepted, accepted


def _with_knobs(params, u):
    d = params.daa
    lo, hi = d.lo.as_array(), d.hi.as_array()
    return params.replace(daa=d.replace(knobs=Knobs.from_array(lo + u * (hi - lo)), budget=1))


def random_search(env, params, idx, key, rollouts: int, policy=expert_policy):
    """Sample `rollouts` knob sets per env from its ranges. params: EnvParams batched over
    envs (leading (E,) on all but the bank); idx (E,) scenario per env.
    Returns (found (E,) bool: some rollout hit, hits (E,) int: rollouts that hit)."""
    axes = params_axes(params, True)

    def one(p, i, k):
        def trial(carry, kk):
            ks, ke = jax.random.split(kk)
            knobs = sample_knobs(ks, p.daa.behaviour, p.daa.lo, p.daa.hi)
            q = p.replace(daa=p.daa.replace(knobs=knobs, budget=1))
            _, hit, _ = episode(env, q, i, ke, policy)
            return carry + hit.astype(jnp.int32), None

        hits, _ = jax.lax.scan(trial, jnp.zeros((), jnp.int32), jax.random.split(k, rollouts))
        return hits

    keys = jax.random.split(key, idx.shape[0])
    hits = jax.vmap(one, in_axes=(axes, 0, 0))(params, idx, keys)
    return hits > 0, hits


def gradient_search(
    env, params, idx, key, rollouts: int, lr: float = 0.15, policy=expert_policy, temperature: float = 0.5
):
    """Adam on normalised knobs from one random start per env, `rollouts` iterates.
    Returns (found (E,) bool, hits (E,) int, final knobs as Knobs with leading (E,))."""
    axes = params_axes(params, True)
    n = idx.shape[0]
    k_init, k_ep = jax.random.split(key)
    u0 = jax.random.uniform(k_init, (n, 6))
    ep_keys = jax.random.split(k_ep, n)

    def loss_one(u, p, i, k):
        soft, hit, accepted = episode(env, _with_knobs(p, u), i, k, policy, temperature)
        return soft, (hit, accepted)

    def loss_all(u):
        soft, aux = jax.vmap(loss_one, in_axes=(0, axes, 0, 0))(u, params, idx, ep_keys)
        return jnp.sum(soft), aux  # envs are independent: the sum's gradient is per env

    opt = optax.adam(lr)

    def it(carry, k):
        u, st, hits = carry
        (_, (hit, accepted)), g = jax.value_and_grad(loss_all, has_aux=True)(u)
        upd, st = opt.update(g, st, u)
        # an iterate without a gradient (check rejected it, or the adversary never comes
        # near the ego so the objective is flat) restarts from a fresh sample
        flat = jnp.max(jnp.abs(g), axis=-1) < 1e-6
        fresh = jax.random.uniform(k, u.shape)
        u = jnp.where((accepted & ~flat)[:, None], jnp.clip(optax.apply_updates(u, upd), 0.0, 1.0), fresh)
        return (u, st, hits + hit.astype(jnp.int32)), None

    carry0 = (u0, opt.init(u0), jnp.zeros((n,), jnp.int32))
    (u, _, hits), _ = jax.lax.scan(it, carry0, jax.random.split(k_init, rollouts))
    lo, hi = params.daa.lo.as_array(), params.daa.hi.as_array()
    return hits > 0, hits, Knobs.from_array(lo + u * (hi - lo))
