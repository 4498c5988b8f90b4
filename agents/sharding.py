"""Data parallelism over a device mesh: the env batch axis is sharded, everything else
(parameters, optimiser state, RNG keys, the scenario bank) is replicated, and jitted
functions get in/out shardings so XLA derives the collectives (the gradient reduction
of the PPO update included): no pmap, no hand-written all-reduce.

    initialize_distributed(cfg.train)            # several processes: jax.distributed
    mesh = make_mesh(resolve_devices(cfg.train.devices, cfg.ppo.num_envs))
    env_params = put(env_params, env_params_shardings(mesh, env_params))

One mesh axis, `ENV_AXIS`, spans every device of every process (the first N global
devices for `train.devices: N`). Arrays handed to a sharded function are global
`jax.Array`s built by `put` from a host value every process holds in full (each
process computes the same init from the same seeds), so the same code runs on one
process and on several.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

ENV_AXIS = "env"

# environment variables read when the matching `train.*` key is unset (jax.distributed's own names)
ENV_VARS = {"coordinator_address": "JAX_COORDINATOR_ADDRESS", "num_processes": "JAX_NUM_PROCESSES",
            "process_id": "JAX_PROCESS_ID"}  # fmt: skip


def distributed_settings(train) -> dict:
    """{coordinator_address, num_processes, process_id} from the `train.*` keys, falling
    back to JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID; num_processes 1
    when neither sets it. Raises ValueError naming the key or variable on a bad value."""
    out = {}
    for key, var in ENV_VARS.items():
        value = getattr(train, key)
        unset = value in ("", -1, 0) if key != "process_id" else value == -1
        if unset and os.environ.get(var, "") != "":
            raw = os.environ[var]
            if key == "coordinator_address":
                value = raw
            else:
                try:
                    value = int(raw)
                except ValueError:
                    raise ValueError(f"environment variable {var} is {raw!r}; it must be an integer") from None
        out[key] = value
    n = out["num_processes"] or 1
    if n > 1:
        if not out["coordinator_address"]:
            raise ValueError(f"'train.num_processes' is {n} but no coordinator address is set "
                             "('train.coordinator_address' or JAX_COORDINATOR_ADDRESS, e.g. host0:1234)")  # fmt: skip
        if not 0 <= out["process_id"] < n:
            raise ValueError(f"'train.process_id' is {out['process_id']}; allowed: 0 .. {n - 1} "
                             "(set it or JAX_PROCESS_ID on every process)")  # fmt: skip
    out["num_processes"] = n
    return out


def initialize_distributed(train) -> int:
    """Join the multi-process run `train` describes (once per process; a no-op for one
    process or when already joined). Returns the number of processes."""
    s = distributed_settings(train)
    if s["num_processes"] == 1 or jax.distributed.is_initialized():
        return jax.process_count()
    jax.distributed.initialize(s["coordinator_address"], s["num_processes"], s["process_id"])
    return jax.process_count()


def resolve_devices(devices: str, num_envs: int, envs_key: str = "ppo.num_envs") -> int:
    """The number of devices `train.devices` ("all" or "N") asks for, checked against the
    visible devices (all processes') and the env batch it must divide."""
    visible = jax.device_count()
    n = visible if devices == "all" else int(devices)
    if n > visible:
        raise ValueError(f"'train.devices' is {devices}, but only {visible} device(s) are visible "
                         f"({jax.default_backend()}); allowed: all or 1 .. {visible}")  # fmt: skip
    if jax.process_count() > 1 and n != visible:
        raise ValueError(f"'train.devices' is {devices}: a run over {jax.process_count()} processes uses every "
                         f"device of every process (set train.devices: all, here {visible})")  # fmt: skip
    if num_envs % n:
        raise ValueError(
            f"'train.devices' ({n}) must divide '{envs_key}' ({num_envs}): each device steps an equal share"
        )
    return n


def make_mesh(num_devices: int | None = None) -> Mesh:
    """A one-axis mesh (`ENV_AXIS`) over the first `num_devices` global devices (default all)."""
    devices = jax.devices()[: num_devices or jax.device_count()]
    return Mesh(np.asarray(devices), (ENV_AXIS,))


def mesh_for(train, num_envs: int, envs_key: str = "ppo.num_envs") -> Mesh | None:
    """The mesh a run with `train` settings uses, or None for today's single-device path
    (one device, one process: nothing is sharded, results stay bit-identical)."""
    initialize_distributed(train)
    n = resolve_devices(train.devices, num_envs, envs_key)
    return make_mesh(n) if n > 1 or jax.process_count() > 1 else None


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def env_sharded(mesh: Mesh, axis: int = 0) -> NamedSharding:
    """Sharding of an array whose `axis` is the env batch (the leading ones replicated)."""
    return NamedSharding(mesh, PartitionSpec(*([None] * axis), ENV_AXIS))


def tree_shardings(tree, sharding):
    """`sharding` for every leaf of `tree` (None leaves stay None)."""
    return jax.tree.map(lambda _: sharding, tree)


def env_params_shardings(mesh: Mesh, params, axis: int = 0):
    """EnvParams batched over envs (`broadcast_params`): the shared fields (the bank)
    replicated, every other leaf sharded on its env `axis`."""
    from jaxsim.wrappers import shared_fields

    shared = {name: tree_shardings(getattr(params, name), replicated(mesh)) for name in shared_fields(params)}
    rest = params.replace(**{name: None for name in shared})
    return tree_shardings(rest, env_sharded(mesh, axis)).replace(**shared)


def put(tree, shardings):
    """Global arrays with `shardings` from host values every process holds in full
    (`jax.device_put` cannot target another process's devices). Leaves are copied to the
    host first; call it once per run, not per step."""

    def one(x, s):
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, s, lambda idx: host[idx])

    return jax.tree.map(one, tree, shardings)


def env_constraint(mesh: Mesh | None):
    """Inside jit: pin the leading (env or minibatch) axis of every leaf of a pytree to
    the mesh, so XLA keeps work data-parallel instead of gathering it on each device.
    Leaves whose leading axis the mesh does not divide are left to XLA. Identity without
    a mesh (the single-device program is unchanged). Works under `jax.vmap` (seeds): the
    spec names the unbatched axes."""
    if mesh is None:
        return lambda tree: tree
    n = mesh.devices.size
    s = NamedSharding(mesh, PartitionSpec(ENV_AXIS))

    def pin(x):
        return jax.lax.with_sharding_constraint(x, s) if x.ndim and x.shape[0] % n == 0 else x

    return lambda tree: jax.tree.map(pin, tree)


def host_value(x) -> np.ndarray:
    """A numpy copy of a (possibly multi-process, sharded) array's global value."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable and not x.is_fully_replicated:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)
