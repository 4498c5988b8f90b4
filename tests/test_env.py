"""Env API: jit without retracing, vmap equals per-env, determinism, auto-reset,
per-env params, observations, differentiability, config validation, debug mode."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from builders import bank_of, straight_road

from jaxsim.config_utils import ConfigError
from jaxsim.env import DrivingEnv, EnvConfig
from jaxsim.observations import split_vector
from jaxsim.wrappers import AutoResetWrapper, VmapWrapper, broadcast_params

KEY = jax.random.PRNGKey(0)
BANK = bank_of(
    straight_road(T=31, agents=[(20.0, 0.0, 0.0, 5.0), (0.0, 3.5, 0.0, 10.0)]),
    straight_road(T=31, speed=6.0, agents=[(-15.0, -3.5, 0.0, 12.0)]),
    straight_road(T=31, speed=12.0),
)


def test_step_traces_once_over_many_steps_and_scenarios():
    env = DrivingEnv(EnvConfig())
    params = env.default_params(BANK)
    step = jax.jit(chex.assert_max_traces(env.step, n=1))
    for idx in range(3):
        obs, state = env.reset_to(KEY, params, idx)
        for k in range(5):
            obs, state, *_ = step(jax.random.fold_in(KEY, k), state, jnp.array([30, 20]), params)
    assert obs.shape == env.observation_shape(params)


def test_vmap_equals_per_env_and_is_deterministic():
    env = DrivingEnv(EnvConfig())
    params = env.default_params(BANK)
    venv = VmapWrapper(env, 3)
    ids = jnp.arange(3)
    actions = jnp.array([[30, 20], [20, 10], [45, 40]])
    obs_b, state_b = venv.reset_to(KEY, params, ids)
    keys = jax.random.split(KEY, 3)
    for _ in range(4):
        obs_b, state_b, r_b, *_ = jax.jit(venv.step)(KEY, state_b, actions, params)
    for i in range(3):
        _, s = env.reset_to(keys[i], params, i)
        for _ in range(4):
            o, s, r, *_ = env.step(KEY, s, actions[i], params)
        chex.assert_trees_all_close(s, jax.tree.map(lambda x: x[i], state_b), atol=1e-5)
        np.testing.assert_allclose(o, obs_b[i], atol=1e-5)
    obs_c, state_c = venv.reset(KEY, params)
    obs_d, state_d = venv.reset(KEY, params)
    chex.assert_trees_all_equal(state_c, state_d)


def test_auto_reset_keeps_final_observation_and_metrics():
    env = AutoResetWrapper(DrivingEnv(EnvConfig(action_space="continuous")))
    params = env.default_params(BANK)
    obs, state = env.reset_to(KEY, params, 0)
    step = jax.jit(env.step)
    for k in range(40):
        obs, state, r, term, trunc, info = step(jax.random.fold_in(KEY, k), state, jnp.zeros(2), params)
        if info["done"]:
            break
    assert bool(info["done"]) and int(state.steps) == 0 and int(state.t) == 0
    assert not np.allclose(info["final_obs"], obs)
    assert float(info["episode"]["steps"]) == k + 1


def test_per_env_params_change_per_env_outcomes():
    env = DrivingEnv(EnvConfig(action_space="continuous", obs="none"))
    params = broadcast_params(env.default_params(BANK), 2)
    params = params.replace(events=params.events.replace(d_max=jnp.array([2.0, 0.05])))
    venv = VmapWrapper(env, 2, batched_params=True)
    _, state = venv.reset_to(KEY, params, jnp.array([2, 2]))
    _, state, _, term, _, info = venv.step(KEY, state, jnp.array([[0.0, 0.3], [0.0, 0.3]]), params)
    for _ in range(3):
        _, state, _, term, _, info = venv.step(KEY, state, jnp.array([[0.0, 0.3], [0.0, 0.3]]), params)
    np.testing.assert_array_equal(info["events"].position_deviation, [False, True])


def test_vector_observation_is_in_the_ego_frame():
    env = DrivingEnv(EnvConfig(obs="vector", num_obs_agents=4))
    params = env.default_params(BANK)
    obs, state = env.reset_to(KEY, params, 0)
    blocks = split_vector(obs, env.config)
    agents = blocks["agents"]
    # nearest: the car 3.5 m to the left at x=0, then the car 20 m ahead
    np.testing.assert_allclose(agents[0, :2] * 20.0, [0.0, 3.5], atol=1e-4)
    np.testing.assert_allclose(agents[1, :2] * 20.0, [20.0, 0.0], atol=1e-4)
    np.testing.assert_array_equal(agents[:, -1], [1, 1, 0, 0])
    assert np.all(blocks["route"][:, 0] > 0) and np.allclose(blocks["route"][:, 1], 0.0, atol=1e-5)
    assert np.all(blocks["road"][:1] < 0)  # the ego stands on the road
    lanes = blocks["lanes"]  # own lane, left neighbour, right neighbour
    np.testing.assert_allclose(lanes[:, :, 1] * 20.0, np.array([[0.0], [3.5], [-3.5]]) * np.ones((1, 10)), atol=1e-4)
    assert np.all(np.diff(lanes[0, :, 0]) > 0) and lanes[0, 0, 0] * 20.0 <= 0.0 + 14.0


def test_bev_observation_shape():
    env = DrivingEnv(EnvConfig(obs="bev", bev_size=32))
    obs, _ = env.reset_to(KEY, env.default_params(BANK), 0)
    assert obs.shape == (32, 32, 5) and obs.dtype == jnp.float32


def test_env_rollout_is_differentiable():
    env = DrivingEnv(EnvConfig(action_space="continuous", obs="none"))
    params = env.default_params(BANK)

    def end_y(steer):
        _, s = env.reset_to(KEY, params, 2)
        for k in range(6):
            _, s, *_ = env.step(KEY, s, jnp.array([0.0, steer[k]]), params)
        return s.ego[1]

    steer = jnp.full((6,), 0.02)
    g = jax.grad(end_y)(steer)
    eps = 1e-3
    fd = [(end_y(steer.at[k].add(eps)) - end_y(steer.at[k].add(-eps))) / (2 * eps) for k in range(6)]
    np.testing.assert_allclose(g, fd, rtol=2e-2, atol=1e-4)
    assert float(g[0]) > float(g[4]) > 0  # earlier steering moves the end point more


def test_substeps_check_events_at_every_substep():
    bank = bank_of(straight_road(T=81, agents=[(8.0, 0.0, 0.0, 0.0)]))
    env = DrivingEnv(EnvConfig(action_space="continuous", obs="none", substeps=5))
    params = env.default_params(bank)
    _, s = env.reset_to(KEY, params, 0)
    _, s, _, term, _, info = env.step(KEY, s, jnp.zeros(2), params)
    # the 3.35 m gap closes at log step 4 of 5: the state is frozen there
    assert bool(term) and info["events"].dynamic_collision and int(s.t) == 4


@pytest.mark.parametrize(
    "kwargs, field",
    [({"action_space": "steer"}, "action_space"), ({"obs": "rgb"}, "obs"), ({"substeps": 0}, "substeps")],
)
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        EnvConfig(**kwargs)


def test_debug_mode_reports_nan_actions():
    env = DrivingEnv(EnvConfig(action_space="continuous", obs="none", debug=True))
    params = env.default_params(BANK)
    _, s = env.reset_to(KEY, params, 0)
    with pytest.raises(Exception, match="non-finite"):
        out = jax.jit(env.step)(KEY, s, jnp.array([jnp.nan, 0.0]), params)
        jax.block_until_ready(out)


def test_restart_wrapper_restarts_from_the_cached_start():
    from jaxsim.wrappers import RestartWrapper

    env = RestartWrapper(DrivingEnv(EnvConfig(action_space="continuous")))
    params = env.default_params(BANK)
    obs0, state = env.reset_to(KEY, params, 1)
    step = jax.jit(env.step)
    for _ in range(40):
        obs, state, r, term, trunc, info = step(KEY, state, jnp.zeros(2), params)
        if info["done"]:
            break
    assert bool(info["done"]) and int(state.env.scenario_idx) == 1
    chex.assert_trees_all_close(state.env, state.first)
    np.testing.assert_allclose(obs, obs0)


def test_gaps_block_reads_lead_follower_and_lag_by_hand():
    """env.obs_gaps: lead and follower gap / closing speed / inverse TTC in the ego's corridor
    (hand-computed on straight roads), and the lag behind the reference's timing."""
    bank = bank_of(
        straight_road(T=31, agents=[(20.0, 0.0, 0.0, 5.0), (0.0, 3.5, 0.0, 10.0)]),  # lead; left-lane car ignored
        straight_road(T=31, speed=8.0, agents=[(-12.0, 0.0, 0.0, 11.0)]),  # a faster follower
    )
    env = DrivingEnv(EnvConfig(obs="vector", obs_gaps=True, action_space="continuous"))
    params = env.default_params(bank)
    plain = DrivingEnv(EnvConfig(obs="vector")).observation_shape(params)[-1]
    assert env.observation_shape(params)[-1] == plain + 7
    ego_len = float(bank.ego_size[0, 0])
    reach = lambda k, j: 0.5 * (ego_len + float(bank.agent_size[k, j, 0]))  # noqa: E731
    none = [50.0 / 20.0, 0.0, 0.0]
    gap = 20.0 - reach(0, 0)
    want0 = [gap / 20.0, 5.0 / 10.0, 5.0 / gap] + none + [0.0]
    gap = 12.0 - reach(1, 0)
    want1 = none + [gap / 20.0, 3.0 / 10.0, 3.0 / gap] + [0.0]
    for k, want in ((0, want0), (1, want1)):
        obs, state = env.reset_to(KEY, params, k)
        np.testing.assert_allclose(split_vector(obs, env.config)["gaps"], want, atol=1e-4)
    obs, state = env.reset_to(KEY, params, 0)
    for _ in range(10):  # brake: the ego falls behind the reference's timing
        obs, state, *_ = env.step(KEY, state, jnp.array([-4.0, 0.0]), params)
    lag = float(split_vector(obs, env.config)["gaps"][-1]) * 20.0
    assert lag < -1.0
    np.testing.assert_allclose(lag, float(state.ego[0] - state.route[state.t, 0]), atol=1e-3)
