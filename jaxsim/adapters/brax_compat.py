"""Keeps brax 0.14's trainers running on jax >= 0.10.

jax 0.10 removed `jax.device_put_replicated`, which brax 0.14.2 (the newest release)
still calls in `brax.training.agents.ppo.train` (google/brax issue #671, open). When
the name is missing we install JAX's documented drop-in replacement (migrate_pmap.html:
stack one copy per device, shard the leading axis over a 1-D mesh). On older jax the
original is left untouched. Applied by `jaxsim.adapters.brax_env` on import.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def device_put_replicated(x, devices):
    """Pytree `x` -> leaves with a leading (len(devices),) axis, one copy per device."""
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    sharding = NamedSharding(Mesh(np.array(devices), ("x",)), PartitionSpec("x"))
    return jax.tree.map(lambda y: jax.device_put(jnp.stack([y] * len(devices)), sharding), x)


def install() -> bool:
    """Provide `jax.device_put_replicated` if this jax lacks it; True if installed."""
    try:
        jax.device_put_replicated  # noqa: B018 (raises AttributeError on jax >= 0.10)
        return False
    except AttributeError:
        jax.device_put_replicated = device_put_replicated
        return True
