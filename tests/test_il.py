import jax
import jax.numpy as jnp
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


def test_yielding_policy_brakes_for_lead_car_where_expert_collides():
    from learner_fixtures import lead_car_bank

    from agents.evaluation import evaluate
    from jaxsim.drivers import scripted_policy

    env = DrivingEnv(tiny_config().env)
    params = env.default_params(lead_car_bank(gaps=(15.0, 20.0, 25.0)))
    ids = np.arange(3)
    expert, _ = evaluate(env, params, scripted_policy("expert", env), ids, jax.random.PRNGKey(0))
    yielding, eps = evaluate(env, params, scripted_policy("yielding", env), ids, jax.random.PRNGKey(0))
    assert expert["DCR"] == 1.0  # following the 10 m/s log runs into the 4 m/s lead car
    assert yielding["CR"] == 0.0 and yielding["DR"] == 0.0, yielding


def test_dagger_labels_the_learners_states_with_the_expert_anchor():
    from agents.dagger import pad_valid, visited_pairs
    from jaxsim import actions as act
    from jaxsim.drivers import expert_target

    cfg = tiny_config()
    env = DrivingEnv(cfg.env)
    params = env.default_params(speeds_bank((6.0, 8.0), T=21))
    net = make_network(cfg.network, cfg.env, env.observation_shape(params), jax.random.PRNGKey(0))
    seeds = jax.tree.map(lambda x: jnp.stack([x, x]), net.params)
    pairs = visited_pairs(env, params, net, seeds, np.arange(2), jax.random.PRNGKey(1), sample=False)
    steps = 20 // cfg.env.substeps
    assert pairs.obs.shape[:2] == (2, 2 * steps)
    # the first decision of episode 1 is the reset state: its label is the expert anchor there
    _, s0 = env.reset_to(jax.random.PRNGKey(0), params, 1)
    want = act.nearest_anchor(expert_target(s0, il.HORIZON_STEPS), env.discrete_spec)
    np.testing.assert_array_equal(np.asarray(pairs.action_discrete[0, 1]), np.asarray(want))
    padded = pad_valid(pairs, size=7)
    assert padded.obs.shape[:2] == (2, 7) and bool(np.all(np.asarray(padded.valid)))


def test_ordinal_soft_labels_reward_near_misses():
    from agents import losses

    t = losses.ordinal_target(jnp.array([3]), 7, 1.0)
    np.testing.assert_allclose(float(t.sum()), 1.0, rtol=1e-6)
    assert int(jnp.argmax(t)) == 3 and float(t[0, 2]) == float(t[0, 4]) > float(t[0, 1])
    near = jnp.zeros((1, 7)).at[0, 4].set(5.0)  # predicts the neighbour anchor
    far = jnp.zeros((1, 7)).at[0, 0].set(5.0)
    assert losses.focal_loss(near, jnp.array([3]), sigma=1.0) < losses.focal_loss(far, jnp.array([3]), sigma=1.0)
