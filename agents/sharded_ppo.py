"""The vector PPO trainer on a device mesh (`agents.sharding`): the same `make_ppo`
functions, vmapped over seeds as in `agents.trainer`, jitted with in/out shardings.

    ppo = make_ppo(cfg.ppo, env, network, batched_params=True, mesh=mesh)
    sp = shard_ppo(ppo, mesh, keys, params0, env_params)
    runner, metrics = sp.chunk(sp.runner, sp.env_params)

Runner leaves with an env axis (env states, observations, running returns: (S, N, ...))
are sharded on N; parameters, optimiser state, RNG keys and counters are replicated;
so are the chunk's metrics (per-update means). Inside the update the minibatches are
pinned to the mesh (`make_ppo(..., mesh=)`), so each device differentiates its slice of
every minibatch and XLA all-reduces the gradients. The minibatch permutation is still
drawn over the global batch: for a seed and a global batch, N devices run the same
algorithm as one (equal up to the order of floating-point sums).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
from jax.sharding import Mesh

from agents.sharding import env_params_shardings, env_sharded, put, replicated, tree_shardings

# Runner fields that never carry an env axis, whatever their shapes
REPLICATED_FIELDS = ("params", "opt_state", "key", "update")


@dataclasses.dataclass(frozen=True)
class ShardedPPO:
    runner: object  # agents.ppo.Runner of global arrays, leading (S,) seed axis
    env_params: object  # EnvParams batched over envs, sharded (bank replicated)
    chunk: Callable  # (runner, env_params) -> (runner, metrics (S, updates_per_chunk))
    runner_shardings: object


def runner_shardings(mesh: Mesh, runner, num_envs: int, axis: int = 1):
    """Shardings for a Runner pytree (abstract or concrete): env axis `axis` (1 under the
    seed vmap) sharded on leaves that have it, the `REPLICATED_FIELDS` replicated."""
    rep, env = replicated(mesh), env_sharded(mesh, axis)

    def leaf(x):
        return env if len(x.shape) > axis and x.shape[axis] == num_envs else rep

    fields = {f.name: getattr(runner, f.name) for f in dataclasses.fields(runner)}
    return runner.replace(**{name: tree_shardings(v, rep) if name in REPLICATED_FIELDS else jax.tree.map(leaf, v)
                             for name, v in fields.items()})  # fmt: skip


def shard_ppo(ppo, mesh: Mesh, keys, params0, env_params, num_envs: int) -> ShardedPPO:
    """Initialise S seeds' runners on `mesh` and jit the chunk with shardings.

    keys (S, 2), params0 (S, ...) per seed; env_params batched over `num_envs` envs.
    Every process passes the same host values (same seeds, same config).
    """
    rep = replicated(mesh)
    ep_sh = env_params_shardings(mesh, env_params)
    env_params = put(env_params, ep_sh)
    keys, params0 = put((keys, params0), tree_shardings((keys, params0), rep))
    vinit = jax.vmap(ppo.init, in_axes=(0, 0, None))
    r_sh = runner_shardings(mesh, jax.eval_shape(vinit, keys, params0, env_params), num_envs)
    runner = jax.jit(vinit, out_shardings=r_sh)(keys, params0, env_params)
    vchunk = jax.vmap(ppo.chunk, in_axes=(0, None))
    metrics = jax.eval_shape(vchunk, runner, env_params)[1]
    chunk = jax.jit(vchunk, in_shardings=(r_sh, ep_sh), out_shardings=(r_sh, tree_shardings(metrics, rep)))
    return ShardedPPO(runner, env_params, chunk, r_sh)
