import jax
import numpy as np
import pytest
from learner_fixtures import lead_car_bank, speeds_bank, tiny_config

from agents import il
from agents.checkpoint import TrainCheckpoints, load_policy, save_policy
from agents.networks import init_params, make_network
from agents.ppo import make_ppo
from agents.runner import Interrupted, run_phase
from jaxsim.env import DrivingEnv


def _il_phase(cfg):
    env = DrivingEnv(cfg.env)
    params = env.default_params(speeds_bank(T=21))
    pairs = il.expert_pairs(env, params, np.arange(4))
    net = make_network(cfg.network, cfg.env, pairs.obs.shape[1:], jax.random.PRNGKey(0))
    init, chunk = il.make_il(cfg.il, net, pairs)
    return init(jax.random.PRNGKey(3), net.params), jax.jit(chunk)


def test_killed_run_resumes_to_identical_parameters(tmp_path):
    cfg = tiny_config("il.steps=40", "il.steps_per_chunk=10", "il.batch_size=32")
    state0, chunk = _il_phase(cfg)
    full, _, _ = run_phase("il", str(tmp_path / "full"), state0, chunk, 4, 1, "steps", progress=False)
    with pytest.raises(Interrupted):  # "killed" after 2 of 4 chunks, checkpoints on disk
        run_phase("il", str(tmp_path / "cut"), state0, chunk, 4, 1, "steps", progress=False, stop_after=2)
    assert TrainCheckpoints(str(tmp_path / "cut")).latest_step() == 2
    resumed, _, _ = run_phase("il", str(tmp_path / "cut"), state0, chunk, 4, 1, "steps", progress=False)
    assert int(resumed.step) == 40
    for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(resumed)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_ppo_runner_roundtrip_is_exact(tmp_path):
    cfg = tiny_config("ppo.num_envs=4", "ppo.num_steps=2", "ppo.num_minibatches=1")
    env = DrivingEnv(cfg.env)
    params = env.default_params(lead_car_bank())
    net = make_network(cfg.network, cfg.env, env.observation_shape(params), jax.random.PRNGKey(0))
    runner = make_ppo(cfg.ppo, env, net).init(jax.random.PRNGKey(5), net.params, params)
    ck = TrainCheckpoints(str(tmp_path))
    ck.save(1, runner)
    zeros = jax.tree.map(np.zeros_like, runner)
    back = ck.restore(zeros)
    assert jax.tree.structure(back) == jax.tree.structure(runner)
    for a, b in zip(jax.tree.leaves(runner), jax.tree.leaves(back)):
        assert np.asarray(a).dtype == np.asarray(b).dtype
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_policy_export_roundtrip(tmp_path):
    cfg = tiny_config("seeds=2")
    obs_shape = (40,)
    p = init_params(cfg.network, cfg.env, obs_shape, jax.random.split(jax.random.PRNGKey(0), 2))
    from agents.trainer import policy_meta

    save_policy(str(tmp_path / "pol"), p, policy_meta(cfg, obs_shape, "il"))
    net, back, meta, cfg2 = load_policy(str(tmp_path / "pol"))
    assert meta["seeds"] == 2 and cfg2.network == cfg.network and cfg2.env == cfg.env
    for a, b in zip(jax.tree.leaves(p), jax.tree.leaves(back)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.slow
def test_il_with_dagger_killed_and_resumed_matches_uninterrupted(tmp_path):
    """DAgger rounds are phases of their own: a run killed inside one resumes exactly."""
    from agents.runner import Interrupted as Stop
    from agents.trainer import run_training

    cfg = tiny_config("il.steps=10", "il.steps_per_chunk=10", "il.batch_size=32", "il.dagger_rounds=1",
                      "il.dagger_steps=20", "ppo.enabled=false", "eval.enabled=false")  # fmt: skip
    bank = speeds_bank(T=21)
    run_training(cfg, str(tmp_path / "full"), banks=(bank, bank))
    with pytest.raises(Stop):  # BC's single chunk ends, then killed after the DAgger round's first chunk
        run_training(cfg, str(tmp_path / "cut"), stop_after=1, banks=(bank, bank))
    run_training(cfg, str(tmp_path / "cut"), banks=(bank, bank))
    _, full, _, _ = load_policy(str(tmp_path / "full" / "policy_il"))
    _, cut, _, _ = load_policy(str(tmp_path / "cut" / "policy_il"))
    for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(cut)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
