"""Traffic actors (jaxsim.traffic): IDM followers brake for a stopping leader without
overlapping it, keep their logged path, mix with log replay in one vmapped batch, trace
once, and bad config values name their key."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from builders import bank_of, straight_road

from agents.train_config import load_config
from jaxsim import traffic as trf
from jaxsim.config_utils import ConfigError
from jaxsim.env import DrivingEnv, EnvConfig
from jaxsim.geometry import box_overlap
from jaxsim.wrappers import VmapWrapper, broadcast_params, env_params

KEY = jax.random.PRNGKey(0)
T, DT = 81, 0.1


def _stopping_leader_scene(curved: bool = False) -> dict:
    """Lane y=-3.5 (or an arc of radius 60 m): a leader 25 m ahead brakes at 4 m/s^2 from
    10 m/s to a stop; the follower's log drives on at 10 m/s straight through it. The ego
    drives the middle lane (y=0), out of the follower's corridor."""
    s = straight_road(T=T, A=4, dt=DT, agents=[(0.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0)])
    t = np.arange(T) * DT
    s_lead = 25.0 + np.where(t < 2.5, 10.0 * t - 2.0 * t * t, 12.5)
    v_lead = np.where(t < 2.5, 10.0 - 4.0 * t, 0.0)
    s_fol, v_fol = 10.0 * t, np.full(T, 10.0)
    for k, (arc, v) in enumerate([(s_lead, v_lead), (s_fol, v_fol)]):
        if curved:  # arc centred at (0, 56.5) starting at (0, -3.5) heading +x
            th = arc / 60.0
            xy = np.stack([60.0 * np.sin(th), 56.5 - 60.0 * np.cos(th)], -1)
            yaw = th
        else:
            xy = np.stack([arc, np.full(T, -3.5)], -1)
            yaw = np.zeros(T)
        s["agent_traj"][:, k] = np.concatenate([xy, yaw[:, None], v[:, None]], -1)
    return s


def _run(env, params, idx=0, steps=T - 2):
    """Agent states (steps, A, 4) and valid (steps, A) along an episode with a coasting ego."""
    state = env.reset_to_state(KEY, params, idx)

    def body(st, _):
        st2, *_ = env.transition(KEY, st, jnp.zeros((2,)), params)
        agents, valid, sizes = env.current_agents(st2, params)
        return st2, (agents, valid, sizes)

    _, out = jax.jit(lambda s: jax.lax.scan(body, s, None, length=steps))(state)
    return jax.tree.map(np.asarray, out)


def _env(traffic="idm", **kw):
    return DrivingEnv(EnvConfig(traffic=traffic, action_space="continuous", obs="vector", **kw))


def test_idm_follower_brakes_behind_stopping_leader_and_never_overlaps():
    bank = bank_of(_stopping_leader_scene())
    for traffic, expect_overlap in (("log", True), ("idm", False)):
        env = _env(traffic)
        agents, valid, sizes = _run(env, env.default_params(bank))
        boxes = np.concatenate([agents[..., :3], sizes], -1)
        overlap = np.asarray(box_overlap(boxes[:, 0], boxes[:, 1]))
        assert overlap.any() == expect_overlap, traffic
    lead, fol = agents[:, 0], agents[:, 1]
    gap = lead[:, 0] - fol[:, 0] - 4.5  # bumper to bumper (both 4.5 m long)
    assert gap.min() > 0.5
    assert fol[-1, 3] < 0.1 and lead[-1, 3] == 0.0  # the follower came to a stop as well
    assert np.all(np.diff(fol[:, 0]) >= -1e-4)  # never backwards


def test_idm_actor_keeps_its_logged_path_on_a_curve():
    scene = _stopping_leader_scene(curved=True)
    bank = bank_of(scene)
    env = _env("idm")
    agents, _, _ = _run(env, env.default_params(bank))
    fol = agents[:, 1]
    log_xy = scene["agent_traj"][:, 1, :2]
    # distance of every follower pose to its logged polyline (dense resampling)
    dense = np.concatenate([np.linspace(log_xy[k], log_xy[k + 1], 50) for k in range(T - 1)])
    dist = np.min(np.linalg.norm(fol[:, None, :2] - dense[None], axis=-1), axis=1)
    assert dist.max() < 0.02
    # it did react (it is far behind its log, which drove into the leader) ...
    assert np.linalg.norm(fol[-1, :2] - log_xy[-1]) > 10.0
    # ... and its heading is the path's (the arc's tangent at its position)
    th = np.arctan2(fol[:, 0], 56.5 - fol[:, 1])
    assert np.max(np.abs(fol[:, 2] - th)) < 0.02


def test_unconstrained_idm_agents_replay_the_log():
    """With nothing in their way (agents far apart, ego elsewhere) IDM actors are exactly at their log."""
    bank = bank_of(straight_road(T=31, agents=[(40.0, -3.5, 0.0, 8.0), (100.0, 3.5, 0.0, 12.0)]))
    env = _env("idm")
    agents, _, _ = _run(env, env.default_params(bank), steps=29)
    np.testing.assert_allclose(agents[:, :2], np.asarray(bank.agent_traj[0, 1:30, :2]), atol=1e-4)


def _mixed_setup():
    from jaxsim.procedural import generate_bank

    bank = generate_bank(4, split="train", seed=3)
    env = DrivingEnv(EnvConfig(traffic="idm", obs="none"))  # the agents are what is compared; no obs compile
    params = trf.mix_actors(broadcast_params(env.default_params(bank), 4), 0.5)
    return env, params


def test_mixed_actors_in_one_vmapped_batch_equal_per_env_runs():
    env, params = _mixed_setup()
    assert np.asarray(params.traffic.actor).tolist() == [0, 1, 0, 1]
    ids = jnp.arange(4)
    actions = jnp.array([[30, 5], [30, 10], [30, 20], [25, 8]])
    venv = VmapWrapper(env, 4, batched_params=True)
    state = venv.reset_to_state(KEY, params, ids)
    step = jax.jit(venv.transition)
    for k in range(12):
        state, *_ = step(jax.random.fold_in(KEY, k), state, actions, params)
    batched = np.asarray(venv.current_agents(state, params)[0])
    for e in range(4):
        p = env_params(params, e)
        st = env.reset_to_state(jax.random.split(KEY, 4)[e], p, e)
        one = jax.jit(env.transition)
        for k in range(12):
            st, *_ = one(jax.random.split(jax.random.fold_in(KEY, k), 4)[e], st, actions[e], p)
        np.testing.assert_allclose(np.asarray(env.current_agents(st, p)[0]), batched[e], rtol=1e-5, atol=1e-4)
    # the LOG envs are exactly their log, the IDM envs are not (the slow ego holds their followers up)
    log_now = np.asarray(params.bank.agent_traj[ids, state.t])
    np.testing.assert_allclose(batched[0], log_now[0], atol=1e-5)
    assert np.abs(batched[1] - log_now[1]).max() > 0.1 or np.abs(batched[3] - log_now[3]).max() > 0.1


def test_step_with_actors_traces_once():
    env, params = _mixed_setup()
    step = jax.jit(chex.assert_max_traces(env.step, n=1))
    for e in range(4):  # LOG and IDM envs, several scenarios: one trace
        p = env_params(params, e)
        obs, state = env.reset_to(KEY, p, e)
        for k in range(3):
            obs, state, *_ = step(jax.random.fold_in(KEY, k), state, jnp.array([30, 20]), p)


def test_log_traffic_state_is_empty():
    bank = bank_of(_stopping_leader_scene())
    env = _env("log")
    state = env.reset_to_state(KEY, env.default_params(bank), 0)
    assert state.traffic.pose.shape == (0, 4)


@pytest.mark.parametrize(
    "override, key, allowed",
    [
        ("env.traffic=replay", "'env.traffic'", "'log', 'idm'"),
        ("env.traffic_idm_fraction=1.5", "'env.traffic_idm_fraction'", "[0.0, 1.0]"),
        ("env.traffic_idm_fraction=-0.1", "'env.traffic_idm_fraction'", "[0.0, 1.0]"),
        ("env.idm.time_gap=50", "'env.idm.time_gap'", "[0.1, 5.0]"),
        ("env.idm.max_decel=0", "'env.idm.max_decel'", "[0.5, 15.0]"),
        ("env.idm.speed=3", "env.idm.speed", "allowed keys"),
    ],
)
def test_bad_traffic_config_names_the_key_and_range(override, key, allowed):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert key in str(err.value) and allowed in str(err.value)
