"""brax and Gymnasium adapters: protocol conformance, autoreset, seeding, brax PPO learns."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from builders import bank_of, straight_road

from jaxsim.env import DrivingEnv, EnvConfig, RewardParams

SMALL_OBS = dict(obs="vector", num_obs_agents=2, num_lane_points=2, num_route_points=3)


@pytest.fixture(autouse=True, scope="module")
def _fast_compile():
    """These tests run tiny programs whose cost is XLA compile time: compile unoptimised."""
    old = jax.config.values["jax_disable_most_optimizations"]
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", old)


def small_params(env, T=21, **kw):
    bank = bank_of(straight_road(T=T, agents=[(30.0, 3.5, 0.0, 8.0)], **kw), straight_road(T=T, speed=6.0, **kw))
    return env.default_params(bank)


# ---------------- brax ----------------


def test_brax_env_protocol_and_training_wrappers():
    from brax.envs.base import Env
    from brax.envs.wrappers import training

    from jaxsim.adapters import BraxDrivingEnv

    env = DrivingEnv(EnvConfig(action_space="continuous", **SMALL_OBS))
    benv = BraxDrivingEnv(env, small_params(env))
    assert isinstance(benv, Env) and benv.action_size == 2
    n = 3
    wrapped = training.wrap(benv, episode_length=100)  # Vmap + Episode + AutoReset, as brax PPO does
    state = jax.jit(wrapped.reset)(jax.random.split(jax.random.PRNGKey(0), n))
    assert state.obs.shape == (n, benv.observation_size)
    step = jax.jit(wrapped.step)
    first_ego = np.asarray(state.pipeline_state.ego)
    steer_left = jnp.tile(jnp.array([[0.0, 1.0]]), (n, 1))  # full left steer: leaves the route fast
    dones = []
    for _ in range(8):
        state = step(state, steer_left)
        dones.append(np.asarray(state.done))
    dones = np.stack(dones)
    assert dones.any(axis=0).all()  # every env ended (a deviation or collision)
    assert set(state.metrics) >= {"reward_lat", "heading_deviation", "progress"}
    done_now = dones[-1].astype(bool)
    # brax's AutoResetWrapper restores our EnvState (pipeline_state) on done
    np.testing.assert_allclose(np.asarray(state.pipeline_state.ego)[done_now], first_ego[done_now])
    ep = state.info["episode_metrics"]
    assert np.all(np.asarray(ep["length"]) > 0)


def test_brax_env_rejects_discrete():
    from jaxsim.adapters import BraxDrivingEnv

    env = DrivingEnv(EnvConfig(action_space="discrete", **SMALL_OBS))
    with pytest.raises(ValueError, match="action_space"):
        BraxDrivingEnv(env, small_params(env))


def test_brax_ppo_improves_over_untrained_policy():
    """brax's own PPO on a straight road: the untrained policy drifts off the route or
    crawls; after ~4k env steps it drives along the route and gains progress reward."""
    from brax.training.agents.ppo import networks as ppo_networks
    from brax.training.agents.ppo import train as ppo

    from jaxsim.adapters import BraxDrivingEnv

    env = DrivingEnv(EnvConfig(action_space="continuous", obs="vector", num_obs_agents=1, num_lane_points=1,
                               num_route_points=3))  # fmt: skip
    params = env.default_params(bank_of(straight_road(T=41)))
    params = params.replace(rewards=RewardParams(event_penalty=1.0, progress_weight=0.1))
    returns = []
    net = functools.partial(
        ppo_networks.make_ppo_networks, policy_hidden_layer_sizes=(32, 32), value_hidden_layer_sizes=(32, 32)
    )
    ppo.train(
        BraxDrivingEnv(env, params), num_timesteps=4096, episode_length=40, num_envs=16, batch_size=16,
        num_minibatches=4, unroll_length=8, num_updates_per_batch=4, learning_rate=3e-3, entropy_cost=1e-3,
        discounting=0.95, num_evals=2, num_eval_envs=16, network_factory=net, normalize_observations=True,
        deterministic_eval=True, use_pmap_on_reset=False, seed=0,
        progress_fn=lambda step, m: returns.append(float(m["eval/episode_reward"])),
    )  # fmt: skip
    assert len(returns) == 2
    untrained, trained = returns
    assert trained > untrained + 1.0, returns


# ---------------- gymnasium ----------------


@pytest.mark.parametrize("action_space", ["discrete", "continuous"])
def test_gym_env_passes_check_env(action_space):
    import gymnasium as gym
    from gymnasium.utils.env_checker import check_env

    from jaxsim.adapters import DrivingGymEnv

    env = DrivingEnv(EnvConfig(action_space=action_space, **SMALL_OBS))
    genv = DrivingGymEnv(env, small_params(env))
    want = gym.spaces.MultiDiscrete([61, 61]) if action_space == "discrete" else gym.spaces.Box(-1, 1, (2,))
    assert genv.action_space == want
    # skip_render_check: render needs jaxsim.viz and is covered in test_rollout_video.py
    check_env(genv, skip_render_check=True)
    obs, info = genv.reset(seed=3, options={"scenario_idx": 1})
    assert info["scenario_idx"] == 1 and obs.dtype == np.float32
    total, done, steps = 0.0, False, 0
    while not done:
        obs, r, term, trunc, info = genv.step(genv.action_space.sample())
        total, done, steps = total + r, term or trunc, steps + 1
    assert "episode_metrics" in info and 1 <= steps <= 20


def test_gym_env_seeding_is_reproducible():
    from jaxsim.adapters import DrivingGymEnv

    env = DrivingEnv(EnvConfig(action_space="discrete", **SMALL_OBS))
    genv = DrivingGymEnv(env, small_params(env))
    idx = [genv.reset(seed=s)[1]["scenario_idx"] for s in range(12)]
    assert set(idx) == {0, 1}  # uniform scenario draw from the seed
    a = genv.reset(seed=5)[0]
    b = genv.reset(seed=5)[0]
    np.testing.assert_array_equal(a, b)


def test_vector_env_same_step_autoreset():
    from gymnasium.vector import AutoresetMode

    from jaxsim.adapters import DrivingVectorEnv

    n = 4
    env = DrivingEnv(EnvConfig(action_space="discrete", **SMALL_OBS))
    venv = DrivingVectorEnv(env, small_params(env, T=11), n)
    assert venv.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert venv.action_space.shape == (n, 2) and venv.observation_space.shape[0] == n
    obs, info = venv.reset(seed=0, options={"scenario_idx": [0, 1, 0, 1]})
    np.testing.assert_array_equal(info["scenario_idx"], [0, 1, 0, 1])
    obs2, _ = venv.reset(seed=0, options={"scenario_idx": [0, 1, 0, 1]})
    np.testing.assert_array_equal(obs, obs2)
    assert venv.observation_space.contains(obs)
    # keep the expert's speed and go straight: RAD anchor (lat 0, lon 5 m in 0.5 s)
    follow = np.tile([[30, 20]], (n, 1))
    seen_done = False
    for _ in range(12):
        obs, rew, term, trunc, info = venv.step(follow)
        assert obs.shape == (n,) + venv.single_observation_space.shape and rew.dtype == np.float32
        if (term | trunc).any():
            seen_done = True
            mask = info["_final_obs"]
            np.testing.assert_array_equal(mask, term | trunc)
            assert info["final_obs"].shape == obs.shape
            # SAME_STEP: the returned obs is already the next episode's first obs
            assert not np.allclose(info["final_obs"][mask], obs[mask])
            assert set(info["final_info"]) >= {"add", "route_completion", "_add"}
            assert np.all(info["final_info"]["route_completion"][mask] > 0.5)
    assert seen_done


@pytest.mark.gpu
def test_brax_ppo_gpu_procedural():
    """brax PPO on the GPU over procedural scenes: runs on jax >= 0.10 and improves."""
    import time

    from brax.training.agents.ppo import train as ppo

    from jaxsim.adapters import BraxDrivingEnv
    from jaxsim.procedural import generate_bank

    if jax.default_backend() != "gpu":
        pytest.skip("jax sees no GPU (run with JAX_PLATFORMS=cuda)")
    env = DrivingEnv(EnvConfig(action_space="continuous", obs="vector"))
    params = env.default_params(generate_bank(256, split="train", seed=0))
    params = params.replace(rewards=RewardParams(event_penalty=1.0, progress_weight=0.05))
    returns, t0 = [], time.perf_counter()
    ppo.train(
        BraxDrivingEnv(env, params), num_timesteps=2_000_000, episode_length=80, num_envs=2048, batch_size=1024,
        num_minibatches=8, unroll_length=16, num_updates_per_batch=4, learning_rate=3e-4, entropy_cost=1e-3,
        discounting=0.95, num_evals=3, num_eval_envs=512, normalize_observations=True, deterministic_eval=True,
        seed=0, progress_fn=lambda step, m: returns.append(float(m["eval/episode_reward"])),
    )  # fmt: skip
    wall = time.perf_counter() - t0
    print(f"brax PPO 2M steps in {wall:.1f} s (incl. compile); eval returns {returns}")
    assert returns[-1] > returns[0]
