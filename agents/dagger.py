"""DAgger for the IL stage (Ross et al., 2011): label the states the learner visits.

Behaviour cloning only sees states on the expert's log; in closed loop the learner
drifts off it (covariate shift) and has never been shown how to come back. Every
DAgger round rolls the current IL policy out on the training scenarios (one episode
per scenario and repeat, actions sampled from the policy for state diversity), and at
every decision asks the expert what it would do there. The expert label exists at any
state because it is computed from the reference route (`jaxsim.drivers.expert_target`:
the route point 0.5 s ahead on the log's schedule, snapped to the nearest RAD anchor);
the continuous label is the bicycle inverse onto the next logged pose.

    pairs = visited_pairs(env, params, network, seed_params, ids, key)   # (S, M, ...) per seed
    per_seed = pad_valid(pairs)                                         # all-valid, equal M

Pairs keep a leading seed axis so every seed trains on its own policy's states.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from agents import policies as pol
from agents.il import HORIZON_STEPS, Pairs, normalise_controls
from jaxsim import actions as act
from jaxsim.drivers import expert_target
from jaxsim.kinematics import inverse
from jaxsim.rollout import episode_steps, unroll
from jaxsim.wrappers import VmapWrapper


def expert_labels(env, state, params):
    """(action_discrete (2,) int32, action_continuous (2,) normalised, valid ()) for one env's state."""
    a_disc = act.nearest_anchor(expert_target(state, HORIZON_STEPS), env.discrete_spec)
    nxt = state.route[jnp.minimum(state.t + 1, state.route_len - 1)]
    ctrl = inverse(state.ego, nxt, params.bank.dt[state.scenario_idx], params.dynamics)
    valid = state.t + HORIZON_STEPS <= state.route_len - 1
    return a_disc, normalise_controls(ctrl, params.dynamics), valid


@functools.lru_cache(maxsize=8)
def _compiled(env, apply, discrete: bool, num_episodes: int, num_steps: int, sample: bool):
    venv = VmapWrapper(env, num_episodes)
    labels = jax.vmap(expert_labels, in_axes=(None, 0, None))

    def one_seed(net_params, env_params, ids, key):
        k_reset, k_run = jax.random.split(key)
        obs, state = venv.reset_to(k_reset, env_params, ids)

        def policy(k_act, obs, state):
            out = apply(net_params, obs)
            a = pol.sample(out, k_act) if sample else pol.mode(out)
            return pol.to_env_action(a, env_params.dynamics, discrete)

        def record(st):
            a_disc, a_cont, ok = labels(env, st.state, env_params)
            return Pairs(obs=st.obs, action_discrete=a_disc, action_continuous=a_cont, valid=ok & ~st.done)

        _, recs = unroll(venv, env_params, policy, k_run, obs, state, num_steps, record)
        return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), recs)

    return jax.jit(jax.vmap(one_seed, in_axes=(0, None, None, 0)))


def visited_pairs(env, params, network, seed_params, scenario_ids, key, sample: bool = True) -> Pairs:
    """Expert-labelled pairs at every decision of the learner's own closed-loop episodes.

    seed_params: S seeds' network params (leading axis). scenario_ids: (E,) one episode
    each (repeat ids for several episodes per scenario). Returns Pairs with leading
    (S, E * steps); `valid` marks live, labellable states.
    """
    ids = jnp.asarray(scenario_ids, jnp.int32)
    steps = episode_steps(env, params)
    num_seeds = jax.tree.leaves(seed_params)[0].shape[0]
    fn = _compiled(env, network.apply, network.discrete, int(ids.shape[0]), int(steps), bool(sample))
    return fn(seed_params, params, ids, jax.random.split(key, num_seeds))


def pad_valid(pairs: Pairs, size: int | None = None) -> Pairs:
    """Per seed, keep the valid pairs and cycle them to a common length (host side):
    (S, M, ...) with mixed validity -> (S, M', ...) all valid, M' = `size` or the largest count."""
    valid = np.asarray(pairs.valid)
    counts = valid.sum(axis=1)
    if counts.min() == 0:
        raise ValueError("DAgger found no labellable state for some seed")
    m = int(size or counts.max())
    idx = np.stack([np.resize(np.nonzero(v)[0], m) for v in valid])  # (S, m)
    return jax.tree.map(
        lambda x: jnp.asarray(np.take_along_axis(np.asarray(x), idx.reshape(idx.shape + (1,) * (x.ndim - 2)), 1)), pairs
    )
