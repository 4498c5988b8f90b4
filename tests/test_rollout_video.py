"""Episode recording: animations are written, have one frame per step, show the BEV."""

import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from builders import bank_of, straight_road
from PIL import Image

from jaxsim.env import DrivingEnv, EnvConfig
from jaxsim.rollout_video import bev_to_rgb, record_episode

SIZE = 96


@pytest.fixture(autouse=True, scope="module")
def _fast_compile():
    """These tests run tiny programs whose cost is XLA compile time: compile unoptimised."""
    old = jax.config.values["jax_disable_most_optimizations"]
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", old)


@pytest.fixture(scope="module")
def bev_setup():
    env = DrivingEnv(EnvConfig(obs="bev", bev_size=32, action_space="continuous"))
    bank = bank_of(straight_road(T=9, agents=[(15.0, 3.5, 0.0, 8.0)]), straight_road(T=9, speed=5.0))
    return env, env.default_params(bank)


def test_record_gif_with_bev_panel(bev_setup, tmp_path):
    env, params = bev_setup
    policy = lambda obs, key: (jnp.zeros((2,)), {})  # noqa: E731  (brax-style (action, extras))
    out = record_episode(env, params, policy, jax.random.PRNGKey(0), 0, tmp_path / "ep.gif", size_px=SIZE,
                         normalized_actions=True)  # fmt: skip
    assert out["steps"] == 8 and out["frames"] == 9 and out["event"] == "none"  # truncated at the log end
    with Image.open(out["path"]) as gif:
        assert gif.n_frames == out["frames"] > 1
        assert gif.size == (2 * SIZE, SIZE)  # scene + the policy's BEV beside it
        first = np.asarray(gif.convert("RGB"))
        gif.seek(gif.n_frames - 1)
        last = np.asarray(gif.convert("RGB"))
    assert not np.array_equal(first, last)  # the scene moves
    assert out["route_completion"] > 0.9


def test_record_mp4_or_gif_fallback(bev_setup, tmp_path):
    env, params = bev_setup
    hard_left = lambda obs, key: jnp.array([0.0, 1.0])  # noqa: E731
    out = record_episode(env, params, hard_left, jax.random.PRNGKey(1), 1, str(tmp_path / "ep.mp4"), size_px=SIZE,
                         normalized_actions=True, max_steps=20)  # fmt: skip
    assert out["event"] in ("heading_deviation", "position_deviation", "static_collision")
    assert 1 < out["frames"] <= 9
    if importlib.util.find_spec("imageio_ffmpeg") is None:
        assert out["path"].endswith(".gif")
    else:
        import imageio.v2 as imageio

        assert out["path"].endswith(".mp4")
        with imageio.get_reader(out["path"]) as reader:
            assert sum(1 for _ in reader) == out["frames"]


def test_bev_to_rgb_colours():
    obs = np.zeros((4, 4, 5), np.float32)
    obs[..., 0] = 1.0
    obs[1, 2, 4] = 1.0
    img = bev_to_rgb(obs, size_px=8)
    assert img.shape == (8, 8, 3) and img.dtype == np.uint8
    assert (img[2, 4] != img[0, 0]).any()  # ego pixel painted over the road


def test_gym_render_rgb_array():
    from jaxsim.adapters import DrivingGymEnv

    env = DrivingEnv(EnvConfig(obs="vector", num_obs_agents=2, num_lane_points=2, num_route_points=3))
    genv = DrivingGymEnv(env, env.default_params(bank_of(straight_road(T=9))), render_mode="rgb_array", render_size=64)
    genv.reset(seed=0)
    img = genv.render()
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8 and img.std() > 0
