"""Gradient adversary search (slow on CPU: grads through whole episodes) and the
65,536-env GPU check."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsim import daa
from jaxsim.daa import search
from jaxsim.daa.scenes import corner_case_bank
from jaxsim.env import DrivingEnv, EnvConfig
from jaxsim.wrappers import VmapWrapper, broadcast_params

ENV = DrivingEnv(EnvConfig(action_space="continuous", obs="none"))


@pytest.mark.slow
def test_gradient_flows_and_descends():
    bank = corner_case_bank(0, fixed=[dict(ego_speed=10.0, agents=[(0, -3.0, 10.5)])], T=41)
    params = ENV.default_params(bank)
    p = params.replace(daa=daa.params_for(daa.Behaviour.CUT_IN_LEFT, daa.Knobs(final_gap=12.0, speed_offset=1.0),
                                          search.SEARCH_CONFIG))  # fmt: skip

    def f(u):
        return search.episode(ENV, search._with_knobs(p, u), 0, jax.random.PRNGKey(0))[0]

    u = jnp.full((6,), 0.6)
    val, g = jax.jit(jax.value_and_grad(f))(u)
    assert np.all(np.isfinite(np.asarray(g))) and float(jnp.abs(g[3])) > 0  # final_gap moves the clearance
    val2 = jax.jit(f)(jnp.clip(u - 0.1 * jnp.sign(g), 0, 1))
    assert float(val2) < float(val)


@pytest.mark.slow
def test_search_api_runs_batched():
    n = 4
    bank = corner_case_bank(n, seed=2, T=41)
    params = broadcast_params(ENV.default_params(bank), n).replace(
        daa=daa.sample_params(jax.random.PRNGKey(0), n, search.SEARCH_CONFIG)
    )
    idx = jnp.arange(n)
    found_r, hits_r = search.random_search(ENV, params, idx, jax.random.PRNGKey(1), 2)
    found_g, hits_g, knobs = search.gradient_search(ENV, params, idx, jax.random.PRNGKey(1), 2)
    assert found_r.shape == found_g.shape == (n,) and int(hits_g.max()) <= 2
    lo, hi = params.daa.lo.as_array(), params.daa.hi.as_array()
    k = knobs.as_array()
    assert bool(jnp.all((k >= lo - 1e-5) & (k <= hi + 1e-5)))


@pytest.mark.gpu
def test_daa_reset_and_step_65536_envs_on_gpu():
    assert jax.default_backend() == "gpu"
    from jaxsim.procedural import generate_bank

    n = 65536
    bank = generate_bank(64, split="train", seed=0)
    env = DrivingEnv(EnvConfig(obs="none"))
    params = broadcast_params(env.default_params(bank), n).replace(daa=daa.sample_params(jax.random.PRNGKey(0), n))
    venv = VmapWrapper(env, n, batched_params=True)
    _, s = jax.jit(venv.reset)(jax.random.PRNGKey(1), params)
    shares = daa.reason_shares(s.adv.status)
    assert abs(sum(shares.values()) - 1.0) < 1e-6 and shares["ok"] > 0.3
    action = jnp.broadcast_to(jnp.array([30, 20], jnp.int32), (n, 2))
    _, s2, r, term, trunc, _ = jax.jit(venv.step)(jax.random.PRNGKey(2), s, action, params)
    assert bool(jnp.all(jnp.isfinite(s2.adv.pose))) and bool(jnp.all(jnp.isfinite(r)))
