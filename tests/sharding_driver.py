"""Subprocess driver of the multi-device tests (tests/test_sharding.py): JAX's device count
is fixed when it initialises, so each case runs here under its own XLA_FLAGS.

    python tests/sharding_driver.py equivalence OUT_DIR   # 8 forced CPU devices
    python tests/sharding_driver.py distributed OUT_DIR PORT RANK NPROC
Writes `result.json` (max |param differences|) into OUT_DIR (rank 0).
"""

from __future__ import annotations

import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(__file__))

import jax  # noqa: E402

if sys.argv[1] == "distributed":  # before anything touches a JAX backend (imports below do)
    jax.distributed.initialize(f"127.0.0.1:{sys.argv[3]}", int(sys.argv[5]), int(sys.argv[4]))

import numpy as np  # noqa: E402
from learner_fixtures import lead_car_bank, tiny_config  # noqa: E402

from agents import adversaries  # noqa: E402
from agents.networks import init_params, make_network  # noqa: E402
from agents.runner import Interrupted  # noqa: E402
from agents.sharding import make_mesh  # noqa: E402
from agents.trainer import _seed_keys, train_ppo  # noqa: E402
from jaxsim.env import DrivingEnv  # noqa: E402

# 8 envs x 4 steps, 2 minibatches of 16 rows (divisible by 8 devices), 2 chunks of 2 updates
CFG = ["seeds=2", "ppo.num_envs=8", "ppo.num_steps=4", "ppo.num_minibatches=2", "ppo.epochs=2",
       "ppo.num_updates=4", "ppo.updates_per_chunk=2"]  # fmt: skip


def setup():
    cfg = tiny_config(*CFG)
    env = DrivingEnv(cfg.env)
    params = env.default_params(lead_car_bank(T=21))
    shape = env.observation_shape(params)
    net = make_network(cfg.network, cfg.env, shape, jax.random.PRNGKey(0))
    return cfg, env, params, net, init_params(cfg.network, cfg.env, shape, _seed_keys(cfg))


def run(out, devices=None, stop_after=None):
    """PPO params (host arrays) on `devices` (None: today's unsharded program)."""
    cfg, env, params, net, p0 = setup()
    mesh = None if devices is None else make_mesh(devices)
    try:
        p, _ = train_ppo(cfg, env, params, net, p0, out, None, stop_after=stop_after, mesh=mesh)
    except Interrupted:
        return None
    return jax.tree.map(np.asarray, p)


def max_diff(a, b) -> float:
    return max(float(np.max(np.abs(x - y))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def equivalence(out):
    assert jax.device_count() == 8, jax.devices()
    ref = run(f"{out}/ref")
    res = {"sharded8": max_diff(ref, run(f"{out}/d8", 8))}
    run(f"{out}/cut", 8, stop_after=1)  # killed after chunk 1 of 2, saved on 8 devices
    for name, devices in (("resume_on_1", None), ("resume_on_4", 4)):
        shutil.copytree(f"{out}/cut", f"{out}/{name}")
        res[name] = max_diff(ref, run(f"{out}/{name}", devices))
    return res


def unsharded_without_checkpoints():
    """Today's single-device program, chunk by chunk (orbax refuses process-local arrays
    once jax.distributed runs, so the reference of the two-process case skips saving)."""
    from agents.ppo import make_ppo

    cfg, env, params, net, p0 = setup()
    ppo = make_ppo(cfg.ppo, env, net, batched_params=True)
    env_params = adversaries.with_daa(params, cfg.ppo.num_envs, (), None)  # DAA off in the tiny config
    keys = jax.vmap(lambda k: jax.random.fold_in(k, 2))(_seed_keys(cfg))
    runner = jax.vmap(ppo.init, in_axes=(0, 0, None))(keys, p0, env_params)
    chunk = jax.jit(jax.vmap(ppo.chunk, in_axes=(0, None)))
    for _ in range(cfg.ppo.num_updates // cfg.ppo.updates_per_chunk):
        runner, _ = chunk(runner, env_params)
    return jax.tree.map(np.asarray, runner.params)


def distributed(out):
    ref = unsharded_without_checkpoints()  # this process alone, its one device
    res = {"devices": jax.device_count(), "processes": jax.process_count(),
           "distributed": max_diff(ref, run(f"{out}/shared", jax.device_count()))}  # fmt: skip
    res["il_policy"] = imitation_and_policy_export(out)
    return res


def imitation_and_policy_export(out):
    """IL + one DAgger round (checkpointed) and the policy export on the processes' mesh,
    as `reconrl train` runs them: max |exported params - trained params|."""
    from agents.checkpoint import load_policy, save_policy
    from agents.logging_utils import RunLogger
    from agents.trainer import policy_meta, train_il

    cfg = tiny_config(*CFG, "il.steps=8", "il.steps_per_chunk=4", "il.batch_size=16", "il.dagger_rounds=1",
                      "il.dagger_steps=4")  # fmt: skip
    _, env, params, net, p0 = setup()
    logger = RunLogger(f"{out}/il/process{jax.process_index()}")
    trained, _ = train_il(cfg, env, params, net, p0, f"{out}/il", logger, mesh=make_mesh(jax.device_count()))
    save_policy(f"{out}/il/policy", trained, policy_meta(cfg, env.observation_shape(params), "il"))
    return max_diff(trained, load_policy(f"{out}/il/policy")[1])


if __name__ == "__main__":
    mode, out = sys.argv[1], sys.argv[2]
    res = equivalence(out) if mode == "equivalence" else distributed(out)
    if jax.process_index() == 0:
        with open(os.path.join(out, "result.json"), "w") as f:
            json.dump(res, f)
    print(json.dumps(res))
