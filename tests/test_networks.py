import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from learner_fixtures import tiny_config
from scipy.stats import norm

from agents import policies as pol
from agents.networks import PolicyOutput, init_params, make_network
from jaxsim.observations import vector_layout


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["network.encoder=attention", "network.embed=16", "network.num_heads=2"],
        ["network.encoder=attention", "network.embed=16", "network.num_heads=2", "env.obs_gaps=true"],
        ["env.obs_gaps=true"],
        ["network.head=continuous", "env.action_space=continuous"],
        ["network.encoder=cnn", "env.obs=bev", "env.bev_size=16"],
    ],
)
def test_network_shapes_and_single_trace(overrides):
    chex.clear_trace_counter()
    cfg = tiny_config(*overrides)
    if cfg.env.obs == "bev":
        shape = (cfg.env.bev_size, cfg.env.bev_size, 5)
    else:
        shape = (max(b for _, b, _ in vector_layout(cfg.env).values()),)
    obs = jax.random.normal(jax.random.PRNGKey(0), (3,) + shape)
    net = make_network(cfg.network, cfg.env, obs.shape[1:], jax.random.PRNGKey(0))
    apply = jax.jit(chex.assert_max_traces(net.apply, n=1))
    out = apply(net.params, obs)
    out = apply(jax.tree.map(lambda x: x + 0.0, net.params), obs)  # new values, same trace
    assert out.values.shape == (3, 2)
    if cfg.network.head == "discrete":
        assert out.logits_lat.shape == (3, 61) and out.logits_lon.shape == (3, 61)
    else:
        assert out.mean.shape == (3, 2) and out.log_std.shape == (3, 2)
    a = pol.sample(out, jax.random.PRNGKey(1))
    assert a.shape == (3, 2) and pol.log_prob(out, a).shape == (3, 2) and pol.entropy(out).shape == (3, 2)
    assert np.all(np.isfinite(np.asarray(out.values)))


def test_seed_params_differ_and_stack():
    cfg = tiny_config()
    p = init_params(cfg.network, cfg.env, (40,), jax.random.split(jax.random.PRNGKey(0), 3))
    leaf = p["critic"]["fc1"]["kernel"]
    assert leaf.shape[0] == 3 and not np.allclose(leaf[0], leaf[1])


def test_discrete_distribution_hand_values():
    out = PolicyOutput(values=jnp.zeros(2), logits_lat=jnp.zeros(61), logits_lon=jnp.log(jnp.arange(1, 62.0)))
    lp = pol.log_prob(out, jnp.array([5, 60]))
    np.testing.assert_allclose(lp, [-np.log(61), np.log(61 / (61 * 62 / 2))], rtol=1e-5)
    np.testing.assert_allclose(pol.entropy(out)[0], np.log(61), rtol=1e-5)
    np.testing.assert_array_equal(pol.mode(out), [0, 60])


def test_continuous_distribution_matches_scipy():
    out = PolicyOutput(values=jnp.zeros(2), mean=jnp.array([0.2, -0.1]), log_std=jnp.log(jnp.array([0.5, 0.3])))
    a = jnp.array([0.4, 0.3])
    lp = pol.log_prob(out, a)  # [steer (lateral), accel (longitudinal)]
    np.testing.assert_allclose(lp, [norm.logpdf(0.3, -0.1, 0.3), norm.logpdf(0.4, 0.2, 0.5)], rtol=1e-5)
    np.testing.assert_allclose(pol.entropy(out), [norm.entropy(0, 0.3), norm.entropy(0, 0.5)], rtol=1e-5)
