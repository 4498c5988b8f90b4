"""Camera policies on the CPU (reference splatter, tiny images): what the policy sees, the
final image of auto-reset episodes, the encoder's traces, and the smoke experiment end
to end with an exact resume."""

import dataclasses
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from builders import bank_of, straight_road

from agents.camera_obs import Camera, ego_state, obs_shape, policy_obs, stack_frames
from agents.networks import make_network
from agents.train_config import ConfigError, load_config
from jaxsim.env import DrivingEnv, EnvConfig
from jaxsim.wrappers import AutoResetWrapper, VmapWrapper
from render_bridge.camera_env import CameraObsEnv
from render_bridge.cameras import RigConfig
from render_bridge.procedural_world import WorldConfig, build_scene_bank
from render_bridge.renderer import Renderer

torch.set_num_threads(1)
SMOKE = os.path.join(os.path.dirname(__file__), "..", "configs", "camera_smoke.yaml")
TINY = WorldConfig(ground_spacing=2.0, buildings=False, far_ground=0.0, actor_gaussians=32)
BANK = bank_of(straight_road(agents=[(12.0, 0.0, 0.0, 5.0)]), straight_road(speed=5.0, agents=[(30.0, 3.5, 0.0, 8.0)]))


def test_policy_observation_holds_image_and_ego_state_only():
    cfg = EnvConfig(obs="camera")
    env = VmapWrapper(DrivingEnv(cfg), 2)
    params = env.default_params(BANK)
    vec, state = env.reset_to(jax.random.PRNGKey(0), params, jnp.array([0, 1]))
    camera = Camera(Renderer(build_scene_bank(BANK, TINY), RigConfig("front", 24, 16), backend="reference"))
    from agents.camera_obs import render_inputs

    inputs = jax.vmap(lambda s: render_inputs(env, s, params, camera.rig))(state)
    obs = policy_obs(camera.render(inputs), vec, cfg)
    assert set(obs) == {"image", "ego"} and obs["image"].dtype == jnp.uint8 and obs["image"].shape == (2, 1, 16, 24, 3)

    # Move every other agent and every lane: the image changes (the cameras see them), the
    # policy's non-image input does not (no privileged agent or lane positions reach it).
    moved = BANK.replace(
        agent_traj=BANK.agent_traj.at[..., 1].add(-3.0), lane_points=BANK.lane_points.at[..., 1].add(1.5)
    )
    params2 = env.default_params(moved)
    vec2, state2 = env.reset_to(jax.random.PRNGKey(0), params2, jnp.array([0, 1]))
    camera2 = Camera(Renderer(build_scene_bank(moved, TINY), RigConfig("front", 24, 16), backend="reference"))
    inputs2 = jax.vmap(lambda s: render_inputs(env, s, params2, camera2.rig))(state2)
    obs2 = policy_obs(camera2.render(inputs2), vec2, cfg)
    assert not np.array_equal(np.asarray(vec), np.asarray(vec2))  # the privileged vector did change
    np.testing.assert_array_equal(np.asarray(obs["ego"]), np.asarray(obs2["ego"]))
    diff = np.abs(np.asarray(obs["image"], float) - np.asarray(obs2["image"], float))
    assert diff.max() >= 10 and diff.mean() > 0.25
    np.testing.assert_array_equal(np.asarray(obs["ego"]), np.asarray(ego_state(vec, cfg)))


def test_final_image_of_auto_reset_episode_is_the_rendered_final_state():
    cfg = EnvConfig(obs="none", max_steps=2)
    base = DrivingEnv(cfg)
    venv = VmapWrapper(AutoResetWrapper(base), 2)
    renderer = Renderer(build_scene_bank(BANK, TINY), RigConfig("front", 24, 16), backend="reference")
    cam = CameraObsEnv(venv, renderer)
    params = venv.default_params(BANK)
    obs, state = cam.reset_to(jax.random.PRNGKey(0), params, jnp.array([0, 1]))
    action = jnp.full((2, 2), 45, jnp.int32)  # strong acceleration: the final pose is far from a restart
    _, state1, *_ = cam.step(jax.random.PRNGKey(1), state, action, params)
    key = jax.random.PRNGKey(2)
    new_obs, _, _, _, truncated, info = cam.step(key, state1, action, params)
    assert bool(jnp.all(truncated)) and bool(jnp.all(info["done"]))
    # independent reference: the base env's transition from state1 (no auto-reset), rendered
    k_env = jax.random.split(key, 2)
    k_step = jax.vmap(lambda k: jax.random.split(k)[0])(k_env)
    final_state = jax.vmap(base.transition, in_axes=(0, 0, 0, None))(k_step, state1, action, params)[0]
    expect = CameraObsEnv(VmapWrapper(base, 2), renderer).renderer.render(*cam.render_inputs(final_state, params))
    np.testing.assert_array_equal(np.asarray(info["final_image"]), np.asarray(expect))
    assert not np.array_equal(np.asarray(info["final_image"]), np.asarray(new_obs))


def test_camera_env_over_a_restart_stack_renders_the_running_episode():
    from jaxsim.wrappers import RestartWrapper

    renderer = Renderer(build_scene_bank(BANK, TINY), RigConfig("front", 24, 16), backend="reference")
    plain = CameraObsEnv(VmapWrapper(AutoResetWrapper(DrivingEnv(EnvConfig(obs="none", max_steps=3))), 2), renderer)
    restart = CameraObsEnv(VmapWrapper(RestartWrapper(DrivingEnv(EnvConfig(obs="none", max_steps=3))), 2), renderer)
    params = plain.default_params(BANK)
    action = jnp.full((2, 2), 40, jnp.int32)
    (a, sa), (b, sb) = (env.reset_to(jax.random.PRNGKey(0), params, jnp.array([0, 1])) for env in (plain, restart))
    for k in range(3):  # the third step ends both episodes: final images of the same final states
        a, sa, *_, ia = plain.step(jax.random.PRNGKey(k), sa, action, params)
        b, sb, *_, ib = restart.step(jax.random.PRNGKey(k), sb, action, params)
        if k < 2:
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert bool(jnp.all(ib["done"]))
    np.testing.assert_array_equal(np.asarray(ia["final_image"]), np.asarray(ib["final_image"]))


def test_camera_encoder_traces_once_and_normalises_uint8():
    cfg = load_config(SMOKE)
    env = DrivingEnv(cfg.env)
    shape = obs_shape(cfg.render, cfg.env, int(env.observation_shape(env.default_params(BANK))[-1]), True)
    net = make_network(cfg.network, cfg.env, shape, jax.random.PRNGKey(0))
    apply = jax.jit(chex.assert_max_traces(net.apply, n=1))
    rng = np.random.default_rng(0)
    for _ in range(3):
        obs = {"image": jnp.asarray(rng.integers(0, 256, (5,) + shape["image"], dtype=np.uint8)),
               "ego": jnp.asarray(rng.normal(size=(5,) + shape["ego"]), jnp.float32)}  # fmt: skip
        out = apply(net.params, obs)
        assert (
            out.logits_lat.shape == (5, 61)
            and out.values.shape == (5, 2)
            and out.perception.shape == (5,) + shape["privileged"]
        )
    # a constant grey image gives the same output as uint8 or as the same values in float
    grey = {"image": jnp.full((1,) + shape["image"], 128, jnp.uint8), "ego": jnp.zeros((1,) + shape["ego"])}
    grey_f = dict(grey, image=grey["image"].astype(jnp.float32))
    np.testing.assert_allclose(net.apply(net.params, grey).values, net.apply(net.params, grey_f).values, rtol=1e-6)


def test_bfloat16_camera_encoder_tracks_float32_with_float32_params():
    """network.compute_dtype=bfloat16: the same float32 parameters, float32 outputs close to
    the float32 network's, and gradients pointing the same way."""
    cfg32, cfg16 = load_config(SMOKE), load_config(SMOKE, ["network.compute_dtype=bfloat16"])
    env = DrivingEnv(cfg32.env)
    shape = obs_shape(cfg32.render, cfg32.env, int(env.observation_shape(env.default_params(BANK))[-1]), True)
    net32 = make_network(cfg32.network, cfg32.env, shape, jax.random.PRNGKey(0))
    net16 = make_network(cfg16.network, cfg16.env, shape, jax.random.PRNGKey(0))
    chex.assert_trees_all_equal(net32.params, net16.params)  # same init, all float32
    assert {x.dtype for x in jax.tree.leaves(net16.params)} == {jnp.dtype(jnp.float32)}
    rng = np.random.default_rng(1)
    obs = {"image": jnp.asarray(rng.integers(0, 256, (16,) + shape["image"], dtype=np.uint8)),
           "ego": jnp.asarray(rng.normal(size=(16,) + shape["ego"]), jnp.float32)}  # fmt: skip
    o32, o16 = net32.apply(net32.params, obs), net16.apply(net32.params, obs)
    for a, b in ((o32.values, o16.values), (o32.logits_lat, o16.logits_lat), (o32.perception, o16.perception)):
        err = float(jnp.max(jnp.abs(a - b)))
        assert b.dtype == jnp.float32 and 0.0 < err <= 0.05 * float(jnp.std(a))  # > 0: bfloat16 is really used

    def grads(net):
        def loss(p):
            out = net.apply(p, obs)
            return jnp.sum(out.values**2) + jnp.sum(jax.nn.log_softmax(out.logits_lat)[:, 0])

        return jnp.concatenate([g.ravel() for g in jax.tree.leaves(jax.grad(loss)(net32.params))])

    g32, g16 = grads(net32), grads(net16)
    assert g16.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(g16)))
    assert float(g32 @ g16 / (jnp.linalg.norm(g32) * jnp.linalg.norm(g16))) > 0.99
    with pytest.raises(ConfigError, match="network.compute_dtype"):
        load_config(SMOKE, ["network.compute_dtype=float16"])


def test_camera_config_validation_names_the_setting():
    with pytest.raises(ConfigError, match="network.encoder"):
        load_config(SMOKE, ["network.encoder=mlp"])
    with pytest.raises(ConfigError, match="render.rig"):
        load_config(SMOKE, ["render.rig=fisheye"])
    with pytest.raises(ConfigError, match="render.width"):
        load_config(SMOKE, ["render.width=4"])
    if not torch.cuda.is_available():
        cfg = load_config(SMOKE, ["render.backend=gsplat"])
        with pytest.raises(ValueError, match="render.backend"):
            Camera.build(cfg.render, BANK)


def test_stack_frames_keeps_the_last_steps_oldest_first():
    rng = np.random.default_rng(0)
    a, b = (jnp.asarray(rng.integers(0, 256, (3, 1, 4, 5, 3), dtype=np.uint8)) for _ in range(2))
    assert stack_frames(a, 1) is a
    fresh = stack_frames(a, 2)  # an episode's first observation repeats its first frame
    np.testing.assert_array_equal(fresh, np.concatenate([a, a], axis=1))
    pushed = stack_frames(b, 2, prev=fresh, restart=jnp.array([False, True, False]))
    np.testing.assert_array_equal(np.asarray(pushed)[[0, 2]], np.concatenate([a, b], axis=1)[[0, 2]])
    np.testing.assert_array_equal(pushed[1], np.concatenate([b, b], axis=1)[1])  # auto-reset: a new stack
    three = stack_frames(b, 3, prev=stack_frames(a, 3))
    np.testing.assert_array_equal(three, np.concatenate([a, a, b], axis=1))
    with pytest.raises(ConfigError, match="render.frames"):
        load_config(SMOKE, ["render.frames=0"])
    assert obs_shape(load_config(SMOKE, ["render.frames=2"]).render, EnvConfig(), 0, False)["image"][0] == 2


def test_two_frame_expert_pairs_show_the_previous_env_step():
    """Pair at log step t = [frame at max(t - substeps, 0), frame at t]: each older frame is
    the one-frame pair of that earlier step, rendered independently."""
    from agents.camera_data import expert_camera_pairs
    from agents.il import expert_pairs

    env = DrivingEnv(EnvConfig(obs="vector", substeps=5))
    params = env.default_params(BANK)
    camera = Camera(Renderer(build_scene_bank(BANK, TINY), RigConfig("front", 24, 16), backend="reference"))
    ids = np.arange(2)
    one = expert_camera_pairs(env, params, camera, ids, 1, True)
    two = expert_camera_pairs(env, params, camera, ids, 1, True, frames=2)
    img1, img2 = np.asarray(one.obs["image"]), np.asarray(two.obs["image"])
    assert img2.shape == (img1.shape[0], 2) + img1.shape[2:]
    np.testing.assert_array_equal(img2[:, 1:], img1)
    steps = BANK.num_steps - 1
    keep = np.flatnonzero(np.asarray(expert_pairs(env, params, ids, stride=1).valid))
    row_of = {(k // steps, k % steps): r for r, k in enumerate(keep)}  # (scenario, t) -> row
    checked = 0
    for (i, t), r in row_of.items():
        earlier = row_of.get((i, max(t - 5, 0)))
        if earlier is not None:
            np.testing.assert_array_equal(img2[r, 0], img1[earlier, 0])
            checked += 1
    assert checked > 50 and not np.array_equal(img2[:, 0], img2[:, 1])


@pytest.mark.slow
def test_camera_ppo_rollout_stacks_frames_and_restarts_them_on_reset():
    from agents import adversaries
    from agents.camera_ppo import make_camera_ppo
    from agents.networks import init_params

    cfg = load_config(SMOKE, ["render.frames=2", "ppo.num_steps=1", "ppo.num_envs=6", "env.max_steps=2"])
    env = DrivingEnv(cfg.env)
    params = env.default_params(BANK)
    camera = Camera(Renderer(build_scene_bank(BANK, TINY), RigConfig("front", 24, 16), backend="reference"))
    shape = obs_shape(cfg.render, cfg.env, int(env.observation_shape(params)[-1]), False)
    net = make_network(cfg.network, cfg.env, shape, jax.random.PRNGKey(0))
    ppo = make_camera_ppo(dataclasses.replace(cfg.ppo, il_coef=0.0), env, net, camera, 1, frames=2)
    env_params = adversaries.with_daa(params, cfg.ppo.num_envs, (), jax.random.PRNGKey(1))
    keys = jax.random.split(jax.random.PRNGKey(0), 1)
    runner = ppo.init(keys, init_params(cfg.network, cfg.env, shape, keys), env_params)
    first = np.asarray(runner.obs["image"])  # (1, N, 2, H, W, 3)
    assert first.shape[2] == 2 and np.array_equal(first[:, :, 0], first[:, :, 1])
    restarts = 0
    for _ in range(3):  # max_steps=2: every episode ends (auto-reset) within the loop
        prev = np.asarray(runner.obs["image"])
        runner, _ = ppo.update(runner, env_params)
        now = np.asarray(runner.obs["image"])
        for j in range(now.shape[1]):
            if np.array_equal(now[0, j, 0], prev[0, j, 1]):
                continue  # the episode goes on: the older frame is the last step's newest
            np.testing.assert_array_equal(now[0, j, 0], now[0, j, 1])  # a new episode's first stack
            restarts += 1
    assert restarts > 0


def _params(run_dir, name):
    from agents.checkpoint import load_policy

    return load_policy(os.path.join(run_dir, name))[1]


@pytest.mark.slow
def test_smoke_config_trains_and_evaluates_end_to_end(tmp_path):
    from agents.trainer import run_training

    cfg = load_config(SMOKE, ["scenarios.num_validation=2"])
    res = run_training(cfg, str(tmp_path / "run"))
    rows = res["eval"]["daa-all"]
    assert set(rows) == {"IL", "RL"} and rows["RL"]["mean"]["Episodes"] == cfg.scenarios.num_heldout
    assert res["validation_eval"]["daa-all"]["RL"]["mean"]["Episodes"] == 2
    assert set(res["il_heldout_accuracy"]) == {"acc_lat", "acc_lon", "acc1_lat", "acc1_lon"}
    assert all(0.0 <= v <= 1.0 for v in res["il_heldout_accuracy"].values())
    assert set(res["timing"]["ppo_split_s"]) == {"render", "simulate", "learn"}
    from PIL import Image

    (gif,) = res["videos"]  # camera view beside the BEV, one frame per decision
    with Image.open(gif) as im:
        assert im.n_frames >= 2 and im.width > im.height
    for name in ("policy_il", "policy_rl"):  # exported camera policies load back
        assert jax.tree.leaves(_params(str(tmp_path / "run"), name))


@pytest.mark.slow
def test_camera_training_resumes_to_identical_parameters(tmp_path, monkeypatch):
    """Killed in IL, then in PPO, then finished: the parameters of an uninterrupted run, and
    the last resume (IL done) collects no DAgger pairs again."""
    import agents.camera_data
    from agents.runner import Interrupted
    from agents.trainer import run_training

    cfg = load_config(SMOKE, ["ctg.enabled=false", "eval.enabled=false"])
    run_training(cfg, str(tmp_path / "full"))
    out = str(tmp_path / "cut")
    with pytest.raises(Interrupted, match="il: stopped after chunk 1"):
        run_training(cfg, out, stop_after=1)
    with pytest.raises(Interrupted, match="ppo: stopped after chunk 1"):
        run_training(cfg, out, stop_after=1)

    def no_dagger(*args, **kwargs):
        raise AssertionError("DAgger pairs collected again after IL finished")

    monkeypatch.setattr(agents.camera_data, "dagger_camera_pairs", no_dagger)
    run_training(cfg, out)
    for name in ("policy_il", "policy_rl"):
        a, b = _params(str(tmp_path / "full"), name), _params(out, name)
        jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)
