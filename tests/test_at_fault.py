"""At-fault collisions (nuPlan's classes, jaxsim.events.CollisionClass) on hand-built
collisions, the metrics' AtFaultCR beside CR, and the at-fault-only reward switch."""

import jax
import jax.numpy as jnp
import numpy as np
from builders import bank_of, straight_road

from jaxsim import metrics as met
from jaxsim.env import DrivingEnv, EnvConfig
from jaxsim.events import CollisionClass as C

KEY = jax.random.PRNGKey(0)
ENV = DrivingEnv(EnvConfig(action_space="continuous", obs="none"))


def _with_agent_path(scene, k, xy, v):
    """Give agent k the logged path xy (T, 2) at speeds v (T,), heading along it."""
    d = np.gradient(xy, axis=0)
    yaw = np.arctan2(d[:, 1], d[:, 0])
    scene["agent_traj"][:, k] = np.concatenate([xy, yaw[:, None], np.broadcast_to(v, (len(xy),))[:, None]], -1)
    scene["agent_valid"][:, k] = True
    scene["agent_type"][k] = 1
    return scene


def _first_collision(scene, action, steps=40, env=ENV):
    """(CollisionClass, final metrics, summed reward) of the episode driving `action` (2,) every step."""
    params = env.default_params(bank_of(scene))
    state = env.reset_to_state(KEY, params, 0)
    total = 0.0
    for _ in range(steps):
        state, reward, term, trunc, info = env.transition(KEY, state, jnp.asarray(action, jnp.float32), params)
        total += float(reward)
        if bool(term) or bool(trunc):
            break
    assert bool(info["events"].dynamic_collision), "the scene must end in a dynamic collision"
    return int(info["events"].collision_class), state.metrics, total


def test_rear_ended_while_stopped_is_not_at_fault():
    scene = straight_road(T=41, speed=0.0, agents=[(-20.0, 0.0, 0.0, 12.0)])
    cls, m, _ = _first_collision(scene, [0.0, 0.0])
    assert cls == C.STOPPED_EGO
    ep = met.finalize(m)
    assert float(ep["dynamic_collision"]) == 1.0 and float(ep["at_fault_collision"]) == 0.0


def test_rear_ended_while_slower_in_lane_is_not_at_fault():
    scene = straight_road(T=41, speed=5.0, agents=[(-15.0, 0.0, 0.0, 15.0)])
    cls, _, _ = _first_collision(scene, [0.0, 0.0])
    assert cls == C.REAR


def test_hitting_a_car_ahead_or_a_stopped_car_is_at_fault():
    moving = straight_road(T=41, speed=10.0, agents=[(15.0, 0.0, 0.0, 2.0)])
    assert _first_collision(moving, [0.0, 0.0])[0] == C.FRONT
    stopped = straight_road(T=41, speed=10.0, agents=[(15.0, 0.0, 0.0, 0.0)])
    cls, m, _ = _first_collision(stopped, [0.0, 0.0])
    assert cls == C.STOPPED_OTHER and float(met.finalize(m)["at_fault_collision"]) == 1.0


def test_lateral_contact_is_at_fault_only_while_the_ego_changes_lanes():
    # an agent alongside in the left lane; the ego steers left into it
    alongside = straight_road(T=41, speed=10.0, agents=[(0.5, 3.2, 0.0, 10.0)])
    assert _first_collision(alongside, [0.0, 0.08])[0] == C.LATERAL_AT_FAULT
    # the ego keeps its lane; an agent alongside swerves into it from the left
    scene = straight_road(T=41, speed=10.0, agents=[(0.0, 0.0, 0.0, 0.0)])
    t = np.arange(41) * 0.1
    xy = np.stack([0.5 + 10.0 * t, 3.5 - np.minimum(t, 2.0) * 1.5], -1)
    scene = _with_agent_path(scene, 0, xy, 10.0)
    assert _first_collision(scene, [0.0, 0.0])[0] == C.LATERAL_NOT_AT_FAULT


def test_aggregate_reports_cr_and_at_fault_cr_side_by_side():
    episodes = {k: np.zeros(4) for k in ("dynamic_collision", "static_collision", "position_deviation",
                                        "heading_deviation", "add", "long_jerk", "lat_jerk", "route_completion")}  # fmt: skip
    episodes["dynamic_collision"] = np.array([1.0, 1.0, 0.0, 0.0])
    episodes["static_collision"] = np.array([0.0, 0.0, 1.0, 0.0])
    episodes["at_fault_collision"] = np.array([1.0, 0.0, 0.0, 0.0])
    row = met.aggregate(episodes)
    assert row["CR"] == 0.75 and row["AtFaultCR"] == 0.5 and row["AtFaultDCR"] == 0.25
    header = met.markdown_table({"x": row}).splitlines()[0]
    assert "| CR | AtFaultCR | DCR | AtFaultDCR |" in header


def test_at_fault_only_reward_ignores_rear_ends_but_still_ends_the_episode():
    scene = straight_road(T=41, speed=5.0, agents=[(-15.0, 0.0, 0.0, 15.0)])
    _, _, penalised = _first_collision(scene, [0.0, 0.0])
    env = DrivingEnv(EnvConfig(action_space="continuous", obs="none"))
    params = env.default_params(bank_of(scene))
    params = params.replace(rewards=params.rewards.replace(at_fault_only=jnp.bool_(True)))
    state = env.reset_to_state(KEY, params, 0)
    total, term = 0.0, False
    while not term:
        state, reward, term, trunc, info = env.transition(KEY, state, jnp.zeros((2,)), params)
        total += float(reward)
        term = bool(term)
    assert penalised == -1.0 and total == 0.0 and bool(info["events"].dynamic_collision)
