"""Orbax checkpoints: resumable training state and exported policies.

`TrainCheckpoints(dir)` keeps the last few chunk checkpoints of a phase (IL or PPO):
the whole runner state pytree (params, optimiser state, env states, RNG keys, counters)
so a resumed run continues bit for bit. `save_policy` / `load_policy` write and read a
policy directory (params + `policy.json` with the network and env config) that
`reconrl eval --checkpoint` understands.

Training state may be sharded over a device mesh (`agents.sharding`): orbax writes each
array's shards, and a restore takes the target's shardings, so the device count may
change between save and resume.

Integrity: every save records a sha256 over the saved arrays (dtype, shape and bytes of
each leaf, in tree order), in `policy.json` ("params_sha256", with each leaf's shape and
dtype under "params_spec") or in `reconrl_sha256.json` inside a training step's folder.
Loading recomputes and compares it, checks shapes and dtypes against the metadata and
that every parameter is finite, and turns orbax/TensorStore failures on a truncated or
damaged file into one `CheckpointError` line naming the file. `policy.json` is written
atomically (temp file + rename), so a kill never leaves it half-written; a damaged one
is reported with its path.
"""

from __future__ import annotations

import hashlib
import json
import os

import jax
import numpy as np
import orbax.checkpoint as ocp

POLICY_META = "policy.json"
STEP_CHECKSUM = "reconrl_sha256.json"


class CheckpointError(ValueError):
    """A checkpoint or policy file is missing, damaged or does not match its metadata."""


def tree_sha256(tree) -> str:
    """sha256 over every leaf's dtype, shape and bytes, in tree order (host copy of the
    global value: the same for any sharding, so a run saved on N devices checks on M)."""
    from agents.sharding import host_value

    h = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        a = np.ascontiguousarray(host_value(leaf))
        h.update(f"{jax.tree_util.keystr(path)}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def tree_spec(tree) -> list:
    """[[path, shape, dtype], ...] of a pytree's leaves (recorded in policy.json)."""
    return [
        [jax.tree_util.keystr(p), list(np.shape(x)), str(np.asarray(x).dtype)]
        for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]
    ]


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:300]}" if text else type(err).__name__


def check_finite_tree(tree, where: str) -> None:
    """Raise CheckpointError naming the first floating-point leaf with NaN/inf values."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        a = np.asarray(leaf)
        if np.issubdtype(a.dtype, np.floating) and a.size:
            if not np.all(np.isfinite(a)):
                bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
                raise CheckpointError(
                    f"{where}: parameter {jax.tree_util.keystr(path)} has {bad} NaN/inf value(s); the file is damaged or the run diverged"
                )


def _stand_in_empty(tree):
    """orbax refuses zero-size arrays (e.g. the (N, 0) traffic state of non-reactive
    actors). They carry no data: save a one-element stand-in of the same dtype, and on
    restore take the (empty) array back from the target."""
    return jax.tree.map(lambda x: np.zeros((1,), np.dtype(x.dtype)) if np.size(x) == 0 else x, tree)


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
        """Save `tree` as `step` and wait until it is on disk (a kill right after is safe).

        The step's checksum file is written (atomically) after orbax has finished, so a
        step without one was interrupted mid-save or predates checksums: it is restored
        without the comparison.
        """
        from jaxsim.io_utils import write_json

        self.manager.save(step, args=ocp.args.StandardSave(_stand_in_empty(tree)))
        self.manager.wait_until_finished()
        step_dir = os.path.join(self.directory, str(step))
        digest = tree_sha256(tree)  # on every process: gathering a sharded leaf is a collective
        if os.path.isdir(step_dir) and jax.process_index() == 0:  # one writer when several processes save
            write_json(os.path.join(step_dir, STEP_CHECKSUM), {"sha256": digest})

    def restore(self, target, step: int | None = None):
        """Restore the checkpoint `step` (default latest) into the structure of `target`.

        Arrays come back with the shardings of `target`'s arrays (orbax reads each device's
        slice), so a state saved on one mesh restores onto another, or onto one device.
        Raises CheckpointError naming the step folder when orbax cannot read it or the
        restored arrays do not match the recorded checksum.
        """
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint under {self.directory}")
        where = os.path.join(self.directory, str(step))
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, _stand_in_empty(target))
        try:
            out = self.manager.restore(step, args=ocp.args.StandardRestore(abstract))
            out = jax.tree.map(lambda got, want: want if np.size(want) == 0 else got, out, target)
        except Exception as err:  # orbax/TensorStore errors span many lines: one line, with the path
            raise CheckpointError(f"training checkpoint {where} cannot be read ({_first_line(err)}); "
                                  f"delete that folder to resume from the previous one, or use --fresh") from None  # fmt: skip
        sums = os.path.join(where, STEP_CHECKSUM)
        if os.path.exists(sums):
            want = _read_json(sums).get("sha256")
            if want != tree_sha256(out):
                raise CheckpointError(f"training checkpoint {where} is damaged: its arrays do not match the sha256 "
                                      f"recorded in {STEP_CHECKSUM}; delete that folder to resume from the previous one")  # fmt: skip
        return out

    def close(self) -> None:
        self.manager.close()


def _read_json(path: str) -> dict:
    """A JSON object from `path`; CheckpointError naming the file if it is not one."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is not valid JSON ({err}); the file is damaged or half-written") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data


def save_policy(directory: str, params, meta: dict) -> None:
    """Write params (pytree, optionally with a leading seed axis) and `meta` (JSON) to `directory`.
    In a run over several processes every process calls it (orbax synchronises them).

    `policy.json` gets "params_sha256" and "params_spec" added and is written last and
    atomically, so a directory with a readable policy.json has complete params.
    """
    from jaxsim.io_utils import write_json

    directory = os.path.abspath(directory)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "params")
    with ocp.StandardCheckpointer() as ckpt:
        ckpt.save(path, params, force=True)
        ckpt.wait_until_finished()
    meta = dict(meta, params_sha256=tree_sha256(params), params_spec=tree_spec(params))
    if jax.process_index() == 0:  # every process joins orbax's save (it syncs them); one writes the meta
        write_json(os.path.join(directory, POLICY_META), meta)
    if jax.process_count() > 1:  # no process reads the policy before it is complete
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(f"save_policy {directory}")


REQUIRED_META = ("network", "env", "obs_shape")


def _is_shape(v) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in v)


def load_policy(directory: str):
    """(network, params, meta, config) of a policy written by `save_policy`.

    `meta` holds "network" and "env" config dicts, "obs_shape" and "seeds" (params carry
    a leading seed axis of that size when "seeds" > 0). Raises CheckpointError naming
    the file when policy.json or the params are damaged or do not match each other.
    """
    from agents.networks import make_network
    from agents.train_config import config_from_dict

    meta_path = os.path.join(directory, POLICY_META)
    if not os.path.exists(meta_path):
        raise FileNotFoundError(f"{directory} is not a policy directory (no {POLICY_META})")
    meta = _read_json(meta_path)
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise CheckpointError(f"{meta_path}: missing key(s) {missing}; a policy file needs {list(REQUIRED_META)}")
    seeds = meta.get("seeds", 0)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 0:
        raise CheckpointError(f"{meta_path}: 'seeds' is {seeds!r}; allowed: an integer >= 0")
    obs_shape = meta["obs_shape"]
    shapes = obs_shape.values() if isinstance(obs_shape, dict) else [obs_shape]  # camera policies: a dict of shapes
    if not obs_shape or not all(_is_shape(v) for v in shapes):
        raise CheckpointError(f"{meta_path}: 'obs_shape' is {obs_shape!r}; allowed: a list of positive integers "
                              "(or, for camera policies, a mapping of such lists)")  # fmt: skip
    try:
        cfg = config_from_dict({"network": meta["network"], "env": meta["env"]})
    except ValueError as err:
        raise CheckpointError(f"{meta_path}: {err}") from None
    network = make_network(cfg.network, cfg.env, obs_shape, jax.random.PRNGKey(0))
    target = network.params
    if seeds:
        target = jax.tree.map(lambda x: np.zeros((seeds,) + x.shape, x.dtype), target)
    spec = meta.get("params_spec")
    if spec is not None and spec != tree_spec(target):
        diff = next(
            (f"{a} vs expected {b}" for a, b in zip(spec, tree_spec(target)) if a != b),
            f"{len(spec)} leaves vs {len(tree_spec(target))}",
        )
        raise CheckpointError(f"{meta_path}: 'params_spec' does not match the network it describes ({diff})")
    params_dir = os.path.join(os.path.abspath(directory), "params")
    if not os.path.isdir(params_dir):
        raise CheckpointError(f"{params_dir} is missing: the policy directory is incomplete")
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    try:
        with ocp.StandardCheckpointer() as ckpt:
            params = ckpt.restore(params_dir, abstract)
    except Exception as err:  # TensorStore's errors span ~150 lines: one line, naming the files
        raise CheckpointError(
            f"policy parameters {params_dir} cannot be read ({_first_line(err)}); the files are truncated or damaged"
        ) from None
    for (path, got), want in zip(jax.tree_util.tree_flatten_with_path(params)[0], jax.tree.leaves(abstract)):
        if np.shape(got) != tuple(want.shape) or np.asarray(got).dtype != want.dtype:
            raise CheckpointError(f"{params_dir}: parameter {jax.tree_util.keystr(path)} has shape {np.shape(got)} "
                                  f"{np.asarray(got).dtype}, {meta_path} says {tuple(want.shape)} {want.dtype}")  # fmt: skip
    want_sum = meta.get("params_sha256")
    if want_sum is not None and tree_sha256(params) != want_sum:
        raise CheckpointError(
            f"policy parameters {params_dir} are damaged: their sha256 differs from 'params_sha256' in {meta_path}"
        )
    check_finite_tree(params, f"policy parameters {params_dir}")
    return network, params, meta, cfg
