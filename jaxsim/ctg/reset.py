"""Start RL episodes on cousins: the chosen cousin becomes the env's reference route,
so the deviation events, ADD and route completion are measured against it.

Two ways to get the cousins:
  online       `CousinResetWrapper(env, cfg)` generates `cfg.num_cousins` candidates in
               every reset (no setup, any params; but `AutoResetWrapper` evaluates a
               reset at every step, so keep `num_cousins` small, e.g. 2-4).
  precomputed  `params = with_cousin_bank(params, build_cousin_bank(key, params, cfg))`
               stores (N, K, T, 4) routes next to the bank in a `CousinParams`; `reset`
               then only indexes it. Like the bank, the cousin bank is shared by all
               envs (`CousinParams.SHARED_FIELDS`, which `params_axes` and
               `broadcast_params` honour), also with `batched_params=True`.

    env = VmapWrapper(AutoResetWrapper(CousinResetWrapper(DrivingEnv(cfg), CTGConfig(num_cousins=4))), n)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxsim.base import Wrapper
from jaxsim.ctg.config import CTGConfig
from jaxsim.ctg.cousins import generate_cousins, sample_cousins
from jaxsim.env import EnvParams


@struct.dataclass
class CousinBank:
    """Accepted-or-not cousins of every scenario: routes (N, K, T, 4), route_len (N, K)
    int32, accepted (N, K) bool."""

    routes: jnp.ndarray
    route_len: jnp.ndarray
    accepted: jnp.ndarray


@struct.dataclass
class CousinParams(EnvParams):
    """EnvParams plus a precomputed, shared `CousinBank` (None: generate online)."""

    SHARED_FIELDS = ("bank", "cousins")

    cousins: CousinBank | None = None


def build_cousin_bank(key, params: EnvParams, cfg: CTGConfig, chunk: int = 0) -> CousinBank:
    """Cousins of every scenario in `params.bank` (one jitted call; `chunk` bounds memory)."""
    n = params.bank.ego_traj.shape[0]
    fn = jax.jit(sample_cousins, static_argnames=("cfg", "batched_params", "chunk"))
    c = fn(key, params, jnp.arange(n, dtype=jnp.int32), cfg, chunk=chunk)
    return CousinBank(routes=c.route, route_len=c.route_len, accepted=c.accepted)


def with_cousin_bank(params: EnvParams, cousins: CousinBank) -> CousinParams:
    fields = {name: getattr(params, name) for name in params.__dataclass_fields__}
    return CousinParams(**fields, cousins=cousins)


def pick_route(key, routes, route_len, accepted, expert_route, expert_len, p_expert):
    """A uniformly chosen accepted cousin, or the expert with probability `p_expert` (or
    when none is accepted). routes (K, T, 4), route_len (K,), accepted (K,).

    Returns (route (T, 4), route_len (), which () int32: cousin index or -1 = expert).
    """
    k_pick, k_exp = jax.random.split(key)
    k = jax.random.categorical(k_pick, jnp.where(accepted, 0.0, -jnp.inf))
    use_expert = ~jnp.any(accepted) | (jax.random.uniform(k_exp) < p_expert)
    route = jnp.where(use_expert, expert_route, routes[k])
    length = jnp.where(use_expert, expert_len, route_len[k])
    return route, length.astype(jnp.int32), jnp.where(use_expert, -1, k).astype(jnp.int32)


class CousinResetWrapper(Wrapper):
    """Every episode starts on an accepted cousin of its scenario (see module doc):
    `reset`, `reset_to` and the resets of an auto-reset wrapper above this one, since
    all of them go through the `reset_state` / `reset_to_state` primitives.

    p_expert: probability of starting on the expert log instead.
    """

    def __init__(self, env, cfg: CTGConfig = CTGConfig(num_cousins=4), p_expert: float = 0.25):
        super().__init__(env)
        if not 0.0 <= p_expert <= 1.0:
            raise ValueError(f"p_expert must be in [0, 1], got {p_expert}")
        self.cfg = cfg
        self.p_expert = p_expert

    def reset_state(self, key, params: EnvParams):
        k_idx, k_rest = jax.random.split(key)
        idx = jax.random.randint(k_idx, (), 0, params.bank.ego_traj.shape[0])
        return self.reset_to_state(k_rest, params, idx)

    def reset_to_state(self, key, params: EnvParams, scenario_idx):
        bank = params.bank
        idx = jnp.asarray(scenario_idx, jnp.int32)
        k_gen, k_pick, k_env = jax.random.split(key, 3)
        pre = getattr(params, "cousins", None)
        if pre is not None:  # static: the pytree structure decides
            routes, lens, ok = pre.routes[idx], pre.route_len[idx], pre.accepted[idx]
        else:
            c = generate_cousins(k_gen, bank, idx, self.cfg, params.dynamics)
            routes, lens, ok = c.route, c.route_len, c.accepted
        expert_len = jnp.sum(bank.ego_valid[idx]).astype(jnp.int32)
        route, length, _ = pick_route(k_pick, routes, lens, ok, bank.ego_traj[idx], expert_len, self.p_expert)
        return self.env.init_state(k_env, params, idx, route, length)
