"""Camera-observation env and `reconrl render` on the CPU (reference backend, tiny images)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from builders import bank_of, straight_road
from PIL import Image

from jaxsim.env import DrivingEnv, EnvConfig
from jaxsim.wrappers import AutoResetWrapper, VmapWrapper
from render_bridge.camera_env import CameraObsEnv
from render_bridge.cameras import RigConfig
from render_bridge.procedural_world import WorldConfig, build_scene_bank
from render_bridge.renderer import Renderer

torch.set_num_threads(1)
TINY = WorldConfig(ground_spacing=2.0, buildings=False, far_ground=0.0, actor_gaussians=32)


BANK = bank_of(straight_road(agents=[(12.0, 0.0, 0.0, 5.0)]), straight_road(speed=5.0))


@pytest.fixture(scope="module")
def cam_env():
    env = VmapWrapper(AutoResetWrapper(DrivingEnv(EnvConfig(obs="none"))), 3)
    renderer = Renderer(build_scene_bank(BANK, TINY), RigConfig("front", 24, 16), backend="reference")
    cam = CameraObsEnv(env, renderer)
    cam._step = jax.jit(chex.assert_max_traces(cam._step_impl, n=1))
    cam._reset_to = jax.jit(chex.assert_max_traces(cam._reset_to_impl, n=1))
    return cam, env.default_params(BANK)


def test_camera_env_steps_jitted_and_returns_jax_images(cam_env):
    cam_env, params = cam_env
    obs, state = cam_env.reset_to(jax.random.PRNGKey(0), params, jnp.array([0, 1, 0]))
    assert isinstance(obs, jax.Array) and obs.shape == (3, 1, 16, 24, 3) and obs.dtype == jnp.uint8
    action = jnp.full((3, 2), 30, jnp.int32)
    for k in range(3):
        obs2, state, reward, term, trunc, info = cam_env.step(jax.random.PRNGKey(k), state, action, params)
    assert obs2.shape == obs.shape and reward.shape == (3,) and "final_obs" in info
    # env 0 has a car 12 m ahead in its lane, env 1 an empty road: their images differ in the middle
    img = np.asarray(obs2).astype(float)
    assert np.abs(img[0, 0, 4:12, 8:16] - img[1, 0, 4:12, 8:16]).mean() > 5.0


def test_chunking_dtype_and_dict_observations(cam_env):
    env, params = cam_env
    env.obs_mode, env.renderer.dtype = "dict", "float32"
    oa, _ = env.reset_to(jax.random.PRNGKey(1), params, jnp.array([0, 1, 0]))
    env.renderer.max_batch = 1  # one env per backend call: same images
    ob, _ = env.reset_to(jax.random.PRNGKey(1), params, jnp.array([0, 1, 0]))
    env.obs_mode, env.renderer.dtype, env.renderer.max_batch = "image", "uint8", 256
    assert set(oa) == {"image", "state"} and oa["image"].dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(oa["image"]), np.asarray(ob["image"]), atol=1e-6)
    np.testing.assert_allclose(np.asarray(oa["image"][0]), np.asarray(oa["image"][2]), atol=1e-6)


def test_tile_lays_out_cameras_three_per_row():
    from agents.commands.render import tile

    imgs = np.arange(6, dtype=np.uint8)[:, None, None, None] * np.ones((6, 4, 5, 3), np.uint8)
    out = tile(imgs)
    assert out.shape == (8, 15, 3) and out[5, 11, 0] == 5 and out[0, 0, 0] == 0


def test_render_command_writes_png_and_video(tmp_path, monkeypatch):
    import os

    monkeypatch.syspath_prepend(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from agents.cli import main
    from jaxsim.bank_io import save_bank

    out, video, bank = tmp_path / "frame.png", tmp_path / "ep.gif", str(tmp_path / "bank.npz")
    save_bank(bank, BANK)
    args = ["render", "--out", str(out), "--video", str(video), "--steps", "2", "--width", "32", "--height", "24",
            "--gaussians", "4000", "--bank", bank, "--torch-threads", "1"]  # fmt: skip
    assert main(args) == 0
    assert Image.open(out).size == (32, 24)
    assert Image.open(video).n_frames == 3
    assert main(["render", "--out", str(out), "--backend", "vulkan", "--bank", bank]) == 2
