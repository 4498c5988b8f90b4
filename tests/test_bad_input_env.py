"""Bad input: env actions and scenario ids (issue 18, finding 5)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from builders import bank_of, straight_road

from jaxsim.actions import ActionError
from jaxsim.env import DrivingEnv, EnvConfig, ScenarioIndexError

BANK = bank_of(straight_road(T=21), straight_road(T=21, speed=8.0))
KEY = jax.random.PRNGKey(0)


def _env(**kw):
    env = DrivingEnv(EnvConfig(obs="none", **kw))
    return env, env.default_params(BANK)


@pytest.mark.parametrize("space, action", [("discrete", jnp.array([30, 40, 2])), ("discrete", jnp.array(30)),
                                           ("continuous", jnp.zeros((1, 2)))])  # fmt: skip
def test_wrong_action_shape_fails_at_trace_time(space, action):
    env, params = _env(action_space=space)
    _, state = env.reset_to(KEY, params, 0)
    with pytest.raises(ActionError, match=r"shape \(2,\)"):
        jax.jit(env.step)(KEY, state, action, params)


@pytest.mark.parametrize("space, bad", [("continuous", [np.nan, 0.1]), ("continuous", [1.0, np.inf]),
                                        ("discrete", [np.nan, 40.0])])  # fmt: skip
def test_nan_action_becomes_the_safe_action(space, bad):
    env, params = _env(action_space=space)
    safe = [-float(params.dynamics.max_decel), 0.0] if space == "continuous" else [30, 0]
    step = jax.jit(env.step)
    _, s_bad = env.reset_to(KEY, params, 0)
    _, s_safe = env.reset_to(KEY, params, 0)
    for _ in range(5):
        _, s_bad, *_ = step(KEY, s_bad, jnp.asarray(bad, jnp.float32), params)
        _, s_safe, *_ = step(KEY, s_safe, jnp.asarray(safe, jnp.float32), params)
    assert np.all(np.isfinite(np.asarray(s_bad.ego)))
    np.testing.assert_array_equal(np.asarray(s_bad.ego), np.asarray(s_safe.ego))
    assert float(s_bad.ego[3]) < 10.0  # it braked


def test_nan_action_raises_in_debug_mode():
    env, params = _env(action_space="continuous", debug=True)
    _, state = env.reset_to(KEY, params, 0)
    with pytest.raises(Exception, match="non-finite"):
        out = env.step(KEY, state, jnp.array([np.nan, 0.0]), params)
        jax.block_until_ready(out)


@pytest.mark.parametrize("idx", [2, -1, 99, np.int32(5), jnp.asarray(7), 1.5, "0"])
def test_reset_to_out_of_range_raises_eagerly(idx):
    env, params = _env()
    with pytest.raises(ScenarioIndexError, match=r"allowed: 0\.\.1"):
        env.reset_to(KEY, params, idx)
    env.reset_to(KEY, params, jnp.asarray(1))  # in range: fine
    jax.jit(env.reset_to)(KEY, params, 1)  # traced ids are not checked (documented: clamped)
