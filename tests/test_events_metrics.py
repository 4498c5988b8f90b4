"""Events and RAD metrics on hand-built scenarios with known answers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from builders import bank_of, straight_road

from agents.evaluation import policy_episodes
from jaxsim import metrics as met
from jaxsim.drivers import scripted_policy
from jaxsim.env import DrivingEnv, EnvConfig

KEY = jax.random.PRNGKey(0)


def run_episode(bank, actions_fn, idx=0, space="continuous", steps=80, **cfg):
    env = DrivingEnv(EnvConfig(action_space=space, obs="none", **cfg))
    params = env.default_params(bank)
    _, state = env.reset_to(KEY, params, idx)
    step = jax.jit(env.step)
    for k in range(steps):
        _, state, reward, term, trunc, info = step(KEY, state, actions_fn(k, state), params)
        if term or trunc:
            return k, state, reward, term, trunc, info
    raise AssertionError("episode did not end")


def test_rear_end_collision_fires_at_the_predicted_step_and_is_ahead():
    # stopped car 30 m ahead; ego at 10 m/s; boxes touch when the gap is (4.8 + 4.5) / 2
    bank = bank_of(straight_road(T=81, agents=[(30.0, 0.0, 0.0, 0.0)]))
    k, state, reward, term, trunc, info = run_episode(bank, lambda k, s: jnp.zeros(2))
    gap = 30.0 - (4.8 + 4.5) / 2
    assert k + 1 == int(np.ceil(gap / (10.0 * 0.1)))
    ev = info["events"]
    assert term and not trunc and ev.dynamic_collision and ev.collision_ahead
    assert float(info["reward_lon"]) == -1.0 and float(info["reward_lat"]) == 0.0
    assert int(state.metrics.event) == met.DYNAMIC


def test_hit_from_behind_is_not_ahead():
    bank = bank_of(straight_road(T=81, agents=[(-20.0, 0.0, 0.0, 20.0)]))
    _, _, _, term, _, info = run_episode(bank, lambda k, s: jnp.zeros(2))
    assert term and info["events"].dynamic_collision and not info["events"].collision_ahead


def test_static_box_and_leaving_the_road_are_static_collisions():
    bank = bank_of(straight_road(T=81, static_boxes=[(25.0, 0.0, 0.0, 1.0, 1.0)]))
    _, _, _, _, _, info = run_episode(bank, lambda k, s: jnp.zeros(2))
    assert info["events"].static_collision and not info["events"].dynamic_collision
    # steering left off a road of half width 5.25 m, with deviation thresholds widened so
    # that the road edge is what ends the episode
    bank = bank_of(straight_road(T=81))
    env = DrivingEnv(EnvConfig(action_space="continuous", obs="none"))
    params = env.default_params(bank)
    params = params.replace(events=params.events.replace(d_max=50.0, psi_max=3.0))
    _, state = env.reset_to(KEY, params, 0)
    for _ in range(80):
        _, state, _, term, _, info = env.step(KEY, state, jnp.array([0.0, 0.05]), params)
        if term:
            break
    assert info["events"].static_collision and float(info["reward_lat"]) == -1.0
    corner_y = float(state.ego[1]) + 0.5 * (4.8 * np.sin(float(state.ego[2])) + 2.0 * np.cos(float(state.ego[2])))
    assert corner_y > 5.25 - 0.2  # the left front corner reached the road edge


def test_position_and_heading_deviation():
    bank = bank_of(straight_road(T=81, road_half_width=30.0))
    _, state, _, term, _, info = run_episode(bank, lambda k, s: jnp.array([0.0, 0.02]))
    assert term and info["events"].position_deviation and not info["events"].static_collision
    assert float(info["events"].route_distance) > 2.0
    # sharp steer at low speed: heading error beyond 40 deg before 2 m of offset
    slow = bank_of(straight_road(T=81, road_half_width=30.0, speed=3.0))
    _, state, _, term, _, info = run_episode(slow, lambda k, s: jnp.array([0.0, 0.8]))
    assert info["events"].heading_deviation and int(state.metrics.event) in (met.HEADING, met.POSITION)
    assert abs(float(info["events"].heading_error)) > np.deg2rad(40) or info["events"].position_deviation


def test_metrics_over_known_episodes():
    # 0: clean expert; 1: rear-end collision; 2: static box in lane; 3: clean, slow
    bank = bank_of(
        straight_road(T=81),
        straight_road(T=81, agents=[(30.0, 0.0, 0.0, 0.0)]),
        straight_road(T=81, static_boxes=[(40.0, 0.0, 0.0, 1.0, 1.0)]),
        straight_road(T=81, speed=4.0),
    )
    env = DrivingEnv(EnvConfig(action_space="continuous", obs="none"))
    params = env.default_params(bank)
    episodes = policy_episodes(env, params, scripted_policy("expert", env), np.arange(4), KEY)
    np.testing.assert_array_equal(episodes["dynamic_collision"], [0, 1, 0, 0])
    np.testing.assert_array_equal(episodes["static_collision"], [0, 0, 1, 0])
    np.testing.assert_allclose(episodes["route_completion"][[0, 3]], 1.0, atol=1e-4)
    np.testing.assert_allclose(episodes["add"], 0.0, atol=1e-3)
    np.testing.assert_allclose(episodes["long_jerk"], 0.0, atol=1e-3)
    row = met.aggregate(episodes)
    assert row["CR"] == pytest.approx(0.5) and row["DCR"] == pytest.approx(0.25) and row["SCR"] == pytest.approx(0.25)
    assert row["DR"] == 0.0 and row["Episodes"] == 4
    table = met.markdown_table({"expert": row})
    assert row["AtFaultCR"] == pytest.approx(0.5)  # the ego drove into a stopped car: its fault
    assert table.splitlines()[0].startswith(
        "| Method | CR | AtFaultCR | DCR | AtFaultDCR | SCR | DR | PDR | HDR | ADD | LongJerk | LatJerk"
    )


def test_add_and_jerk_have_their_closed_form_values():
    # drive parallel to the route 1 m to the left: ADD = 1; a jerk profile with known sum
    road = straight_road(T=81, road_half_width=30.0)
    road["ego_traj"][:, 1] += 1.0  # the reference runs along y = 1
    bank = bank_of(road)
    env = DrivingEnv(EnvConfig(action_space="continuous", obs="none"))
    params = env.default_params(bank)
    _, state = env.reset_to(KEY, params, 0)
    state = state.replace(ego=state.ego.at[1].set(2.0))  # start 1 m left of it
    accels = [1.0, 1.0, -1.0, 0.0] + [0.0] * 76
    for a in accels:
        _, state, _, term, trunc, _ = env.step(KEY, state, jnp.array([a, 0.0]), params)
        if term or trunc:
            break
    ep = met.finalize(state.metrics)
    assert float(ep["add"]) == pytest.approx(1.0, abs=1e-3)
    # longitudinal accelerations 1, 1, -1, 0, 0...: jerks (from step 2) 0, -20, 10, 0...
    assert float(ep["long_jerk"]) == pytest.approx(30.0 / float(state.metrics.jerk_steps), rel=1e-3)
    assert float(ep["lat_jerk"]) == pytest.approx(0.0, abs=1e-3)
