"""Orbax checkpoints: resumable training state and exported policies.

`TrainCheckpoints(dir)` keeps the last few chunk checkpoints of a phase (IL or PPO):
the whole runner state pytree (params, optimiser state, env states, RNG keys, counters)
so a resumed run continues bit for bit. `save_policy` / `load_policy` write and read a
policy directory (params + `policy.json` with the network and env config) that
`reconrl eval --checkpoint` understands.
"""
from __future__ import annotations

import json
import os

import jax
import numpy as np
import orbax.checkpoint as ocp

POLICY_META = "policy.json"


class TrainCheckpoints:
    """Step-indexed checkpoints of one training phase under `directory`."""

    def __init__(self, directory: str, max_to_keep: int = 2):
        self.directory = os.path.abspath(directory)
        self.manager = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        )

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, tree) -> None:
        """Save `tree` as `step` and wait until it is on disk (a kill right after is safe)."""
        self.manager.save(step, args=ocp.args.StandardSave(tree))
        self.manager.wait_until_finished()

    def restore(self, target, step: int | None = None):
        """Restore the checkpoint `step` (default latest) into the structure of `target`."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint under {self.directory}")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
        return self.manager.restore(step, args=ocp.args.StandardRestore(abstract))

    def close(self) -> None:
        self.manager.close()


def save_policy(directory: str, params, meta: dict) -> None:
    """Write params (pytree, optionally with a leading seed axis) and `meta` (JSON) to `directory`."""
    directory = os.path.abspath(directory)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "params")
    with ocp.StandardCheckpointer() as ckpt:
        ckpt.save(path, params, force=True)
        ckpt.wait_until_finished()
    with open(os.path.join(directory, POLICY_META), "w") as f:
        json.dump(meta, f, indent=2)


def load_policy(directory: str):
    """(network, params, meta) of a policy written by `save_policy`.

    `meta` holds "network" and "env" config dicts, "obs_shape" and "seeds" (params carry
    a leading seed axis of that size when "seeds" > 0).
    """
    from agents.networks import make_network
    from agents.train_config import config_from_dict

    meta_path = os.path.join(directory, POLICY_META)
    if not os.path.exists(meta_path):
        raise FileNotFoundError(f"{directory} is not a policy directory (no {POLICY_META})")
    with open(meta_path) as f:
        meta = json.load(f)
    cfg = config_from_dict({"network": meta["network"], "env": meta["env"]})
    network = make_network(cfg.network, cfg.env, tuple(meta["obs_shape"]), jax.random.PRNGKey(0))
    target = network.params
    if meta.get("seeds", 0):
        target = jax.tree.map(lambda x: np.zeros((meta["seeds"],) + x.shape, x.dtype), target)
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    with ocp.StandardCheckpointer() as ckpt:
        params = ckpt.restore(os.path.join(os.path.abspath(directory), "params"), abstract)
    return network, params, meta, cfg
