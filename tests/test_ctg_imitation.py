"""CTG uses: imitation pairs along cousins, and RL episodes that start on cousins."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from builders import bank_of
from test_ctg_scenes import junction_road, straight_scene

from jaxsim import actions as act
from jaxsim import ctg
from jaxsim import kinematics as kin
from jaxsim.ctg.imitation import imitation_batch, imitation_iterator
from jaxsim.ctg.reset import CousinBank, CousinResetWrapper, build_cousin_bank, with_cousin_bank
from jaxsim.env import DrivingEnv, EnvConfig
from jaxsim.observations import split_vector
from jaxsim.wrappers import AutoResetWrapper, VmapWrapper

T, K, N = 81, 4, 3
CFG = ctg.CTGConfig(path_points=160, num_cousins=K, include_expert=True)


@pytest.fixture(scope="module")
def setup():
    bank = bank_of(straight_scene(), junction_road(), straight_scene(speed=8.0, agents=[(25.0, 3.5, 0.0, 8.0)]))
    env = DrivingEnv(EnvConfig(obs="vector"))
    params = env.default_params(bank)
    batch = imitation_batch(jax.random.PRNGKey(0), env, params, N, CFG, scenario_idx=jnp.arange(N))
    return env, params, jax.device_get(batch)


def _blocks(batch, name):
    x = batch[name]
    return x.reshape((N, K, T - 1) + x.shape[1:])


@jax.jit
def _replay_continuous(ego0, controls):
    return jax.vmap(lambda s, u: kin.rollout(s, u, 0.1, kin.DynamicsParams()))(ego0, controls)


@jax.jit
def _replay_discrete(ego0, anchors):
    spec, dyn = act.DiscreteActionSpec(), kin.DynamicsParams()

    def one(s0, a):
        def body(s, ai):
            u = act.displacement_to_controls(act.decode_discrete(ai, spec), s[3], spec.horizon, dyn)
            s = kin.step(s, u, 0.1, dyn)
            return s, s

        return jax.lax.scan(body, s0, a)[1]

    return jax.vmap(one)(ego0, anchors)


def test_pairs_shapes_and_validity(setup):
    env, params, b = setup
    rows = N * K * (T - 1)
    assert b["obs"].shape == (rows,) + env.observation_shape(params)
    assert b["action_continuous"].shape == (rows, 2) and b["action_continuous"].dtype == np.float32
    assert b["action_discrete"].shape == (rows, 2) and b["action_discrete"].dtype == np.int32
    assert b["valid"].dtype == bool and b["valid"].mean() > 0.5
    valid = _blocks(b, "valid")
    assert np.all(valid[:, 0])  # cousin 0 is the expert, always accepted here
    np.testing.assert_array_equal(_blocks(b, "scenario_idx")[:, 0, 0], np.arange(N))


def test_continuous_actions_replay_the_cousin_exactly(setup):
    _, params, b = setup
    ego = _blocks(b, "ego").reshape(N * K, T - 1, 4)
    u = _blocks(b, "action_continuous").reshape(N * K, T - 1, 2)
    valid = _blocks(b, "valid").reshape(N * K, T - 1)
    replay = np.asarray(_replay_continuous(jnp.asarray(ego[:, 0]), jnp.asarray(u)))
    ok = valid[:, 0]
    np.testing.assert_allclose(replay[ok, :-1], ego[ok, 1:], atol=1e-4)
    # the expert cousin is the log itself (straight scenes: y = 0 at the logged speed)
    log = np.asarray(params.bank.ego_traj)
    for n in (0, 2):
        np.testing.assert_allclose(ego.reshape(N, K, T - 1, 4)[n, 0], log[n, : T - 1], atol=2e-3)


def test_pairs_do_not_depend_on_the_envs_action_repeat(setup):
    """An env that holds each action for 5 log steps gets the same per-log-step pairs:
    before the fix its row t showed the ego at log step 5t beside log step t's labels."""
    env, params, b = setup
    env5 = DrivingEnv(EnvConfig(obs="vector", substeps=5))
    b5 = jax.device_get(imitation_batch(jax.random.PRNGKey(0), env5, params, N, CFG, scenario_idx=jnp.arange(N)))
    for name in ("ego", "obs", "action_continuous", "action_discrete", "valid"):
        np.testing.assert_allclose(b5[name], b[name], atol=1e-5, err_msg=name)


def test_observations_use_the_cousin_as_route(setup):
    env, _, b = setup
    blocks = split_vector(jnp.asarray(b["obs"]), env.config)
    valid = b["valid"]
    lateral, heading_err = np.asarray(blocks["ego"][:, 3]), np.asarray(blocks["ego"][:, 4])
    assert np.abs(lateral[valid]).max() < 0.02 and np.abs(heading_err[valid]).max() < 0.02
    # but the cousins do leave the expert's line
    assert np.abs(b["ego"][valid, 1]).max() > 3.0


def test_discrete_labels_reproduce_the_cousin(setup):
    _, _, b = setup
    spec = act.DiscreteActionSpec()
    ego = _blocks(b, "ego").reshape(N * K, T - 1, 4)
    labels = _blocks(b, "action_discrete").reshape(N * K, T - 1, 2)
    valid = _blocks(b, "valid").reshape(N * K, T - 1)[:, 0]
    # the label is the nearest anchor of the true 0.5 s displacement
    h = 5
    rel = ego[:, h:, :2] - ego[:, :-h, :2]
    c, s = np.cos(ego[:, :-h, 2]), np.sin(ego[:, :-h, 2])
    disp = np.stack([-s * rel[..., 0] + c * rel[..., 1], c * rel[..., 0] + s * rel[..., 1]], -1)  # [lat, lon]
    decoded = np.asarray(act.decode_discrete(jnp.asarray(labels[:, :-h]), spec))
    half_bin = np.array([0.75 / 60, 7.5 / 60]) + 1e-4
    assert np.all(np.abs(decoded - disp)[valid] <= half_bin)
    # replayed open loop through the anchors' controls, the ego stays near the cousin
    replay = np.asarray(_replay_discrete(jnp.asarray(ego[:, 0]), jnp.asarray(labels)))
    err = np.hypot(*(replay[:, :-1, :2] - ego[:, 1:, :2]).transpose(2, 0, 1))
    assert err[valid].max() < 1.5


@pytest.mark.slow
def test_iterator_yields_valid_minibatches(setup):
    env, params, _ = setup
    it = imitation_iterator(jax.random.PRNGKey(1), env, params, N, batch_size=64, cfg=CFG)
    first, second = next(it), next(it)
    assert first["obs"].shape == (64,) + env.observation_shape(params) and "valid" not in first
    assert not np.array_equal(first["ego"], second["ego"])


def test_episode_starts_on_a_precomputed_cousin(setup):
    _, params, b = setup
    # a cousin bank made of the IL batch's cousins, two of them marked rejected
    ego = _blocks(b, "ego")
    routes = np.concatenate([ego, ego[:, :, -1:]], axis=2)  # (N, K, T, 4)
    accepted = _blocks(b, "valid")[:, :, 0].copy()
    accepted[1, [0, 3]] = False
    bank = CousinBank(
        routes=jnp.asarray(routes), route_len=jnp.full((N, K), T, jnp.int32), accepted=jnp.asarray(accepted)
    )
    cparams = with_cousin_bank(params, bank)
    env = CousinResetWrapper(DrivingEnv(EnvConfig(obs="none", action_space="continuous")), CFG, p_expert=0.0)
    reset = jax.jit(env.reset_to)
    seen = set()
    for seed in range(8):
        _, state = reset(jax.random.PRNGKey(seed), cparams, 1)
        match = [k for k in range(K) if np.array_equal(np.asarray(state.route), routes[1, k])]
        assert match and accepted[1, match[0]], match
        seen.add(match[0])
    assert seen == {1, 2}
    # the cousin is the reference: driving it with its own controls fires no event
    u = _blocks(b, "action_continuous")[1, max(seen)]
    _, state = reset(jax.random.PRNGKey(0), cparams, 1)
    _, state = env.reset_on_route(jax.random.PRNGKey(0), params, 1, jnp.asarray(routes[1, max(seen)]), T)
    step = jax.jit(env.step)
    for t in range(T - 2):  # the last route row is a copy (IL rows stop at T - 1)
        _, state, _, terminated, _, info = step(jax.random.PRNGKey(0), state, jnp.asarray(u[t]), params)
        assert not bool(terminated) and float(info["events"].route_distance) < 1e-3
    # with p_expert = 1 the route is the log
    _, state = jax.jit(CousinResetWrapper(env.env, CFG, p_expert=1.0).reset_to)(jax.random.PRNGKey(0), cparams, 1)
    np.testing.assert_array_equal(np.asarray(state.route), np.asarray(params.bank.ego_traj[1]))


@pytest.mark.slow
def test_online_cousin_resets_under_autoreset_and_vmap(setup):
    _, params, _ = setup
    env = VmapWrapper(AutoResetWrapper(CousinResetWrapper(DrivingEnv(EnvConfig(obs="none")), CFG, p_expert=0.0)), 4)
    obs, state = jax.jit(env.reset)(jax.random.PRNGKey(0), params)
    bank = build_cousin_bank(jax.random.PRNGKey(2), params, CFG)
    assert bank.routes.shape == (N, K, T, 4) and bool(bank.accepted[:, 0].all())
    expert = np.asarray(params.bank.ego_traj)[np.asarray(state.scenario_idx)]
    assert not np.allclose(np.asarray(state.route), expert)
    step = jax.jit(env.step)
    action = jnp.tile(jnp.array([30, 40], jnp.int32), (4, 1))
    for _ in range(3):
        obs, state, *_ = step(jax.random.PRNGKey(1), state, action, params)
    assert np.all(np.isfinite(np.asarray(state.ego)))
