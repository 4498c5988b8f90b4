import jax
import numpy as np
from learner_fixtures import speeds_bank, tiny_config

from agents import il
from agents.networks import make_network
from jaxsim.env import DrivingEnv


def test_expert_pairs_label_constant_speed_anchor():
    cfg = tiny_config()
    env = DrivingEnv(cfg.env)
    params = env.default_params(speeds_bank((10.0,), T=21))
    pairs = il.expert_pairs(env, params, [0])
    valid = np.asarray(pairs.valid)
    # 0.5 s at 10 m/s = 5 m ahead, centred: anchor (30, 20) on the 61 x 61 grid
    np.testing.assert_array_equal(np.asarray(pairs.action_discrete)[valid], np.tile([30, 20], (valid.sum(), 1)))
    assert valid.sum() == 21 - il.HORIZON_STEPS  # the label needs the log 0.5 s ahead
    np.testing.assert_allclose(np.asarray(pairs.action_continuous)[valid], 0.0, atol=1e-6)


def test_il_reaches_accuracy_on_expert_actions():
    cfg = tiny_config("il.steps=300", "il.steps_per_chunk=300", "il.batch_size=128", "il.lr=3e-3", "network.hidden=64")
    env = DrivingEnv(cfg.env)
    params = env.default_params(speeds_bank((6.0, 8.0, 10.0, 12.0), T=21))
    pairs = il.expert_pairs(env, params, np.arange(4))
    net = make_network(cfg.network, cfg.env, pairs.obs.shape[1:], jax.random.PRNGKey(0))
    before = il.accuracy(net, net.params, pairs)
    init, chunk = il.make_il(cfg.il, net, pairs)
    state, m = jax.jit(chunk)(init(jax.random.PRNGKey(1), net.params))
    acc = il.accuracy(net, state.params, pairs)
    assert acc["acc_lat"] >= 0.95 and acc["acc_lon"] >= 0.9, (before, acc)
    assert before["acc_lon"] < 0.5
    assert float(m["il_loss"]) < 1.0
