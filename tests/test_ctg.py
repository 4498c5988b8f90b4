"""CTG sampling and checking: lane changes, limits, rejections, vectorisation."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from builders import bank_of
from shapely.geometry import Polygon
from test_ctg_scenes import ROAD_HALF, junction_road, straight_scene

from jaxsim import ctg
from jaxsim.config_utils import ConfigError
from jaxsim.ctg import paths, profiles
from jaxsim.env import DrivingEnv, EnvConfig
from jaxsim.kinematics import DynamicsParams

# one config for the whole module: every test reuses the same compiled sampler
CFG = ctg.CTGConfig(path_points=160, num_cousins=24, maneuver_start=(0.5, 1.5), lane_change_time=(3.5, 4.5))
SAMPLE = jax.jit(chex.assert_max_traces(ctg.sample_cousins, n=1), static_argnames=("cfg", "batched_params", "chunk"))
KEY = jax.random.PRNGKey(3)


@pytest.fixture(scope="module")
def scenes():
    bank = bank_of(
        straight_scene(),
        straight_scene(speed=8.0, agents=[(25.0, 3.5, 0.0, 8.0), (-12.0, -3.5, 0.0, 9.0)],
                       static_boxes=[(60.0, -4.5, 0.0, 4.0, 1.5)]),
        junction_road(),
        straight_scene(ego_y=3.5),
    )  # fmt: skip
    params = DrivingEnv(EnvConfig(obs="none")).default_params(bank)
    cousins = SAMPLE(KEY, params, jnp.arange(4), CFG)
    return params, CFG, jax.device_get(cousins)


def test_lane_changes_end_on_the_neighbour_centre(scenes):
    _, _, c = scenes
    # scenes 0 and 1: ego on the middle lane (y = 0); scene 3: on the left lane (y = 3.5)
    for n, start in [(0, 0.0), (1, 0.0), (3, 3.5)]:
        lc = c.lateral[n] >= ctg.Lateral.LANE_LEFT
        # lane changes at logged or higher speed have finished by the end of the log
        done = lc & c.accepted[n] & ((c.speed[n] == ctg.Speed.LOG) | (c.speed[n] == ctg.Speed.FASTER))
        assert done.sum() >= 2, (n, c.lateral[n], c.speed[n], c.reasons[n])
        end = c.states[n, done, 80]
        target = start + np.where(c.lateral[n, done] == ctg.Lateral.LANE_LEFT, 3.5, -3.5)
        np.testing.assert_allclose(end[:, 1], target, atol=0.05)
        np.testing.assert_allclose(end[:, 2], 0.0, atol=0.01)


def _corners(box):
    """Numpy corners (..., 4, 2) of boxes [x, y, yaw, length, width] (..., 5)."""
    c, s = np.cos(box[..., 2:3]), np.sin(box[..., 2:3])
    lx = 0.5 * box[..., 3:4] * np.array([1, -1, -1, 1])
    ly = 0.5 * box[..., 4:5] * np.array([1, 1, -1, -1])
    return np.stack([box[..., :1] + c * lx - s * ly, box[..., 1:2] + s * lx + c * ly], -1)


def _limits_hold(states, dt, dyn, slack=1.01):
    """Independent numpy check of the dynamic limits along states (N, 4)."""
    x, y, yaw, v = states.T.astype(np.float64)
    accel = np.diff(v) / dt
    dyaw = np.angle(np.exp(1j * np.diff(yaw)))
    moving = v[:-1] > 1e-3
    curv = np.where(moving, dyaw / np.where(moving, v[:-1], 1.0) / dt, 0.0)
    lat = v[:-1] ** 2 * curv
    step = np.hypot(np.diff(x), np.diff(y))
    assert np.allclose(step, v[:-1] * dt, atol=1e-3), "positions do not follow the bicycle model"
    assert np.abs(curv).max() <= np.tan(dyn.max_steer) / dyn.wheelbase * slack
    assert accel.max() <= dyn.max_accel * slack and accel.min() >= -dyn.max_decel * slack
    assert np.abs(lat).max() <= dyn.max_lat_accel * slack
    assert np.abs(np.diff(accel) / dt).max() <= dyn.max_jerk * slack
    assert np.abs(np.diff(lat) / dt).max() <= dyn.max_jerk * slack
    assert v.max() <= dyn.max_speed * slack


def test_accepted_cousins_respect_limits_road_and_agents(scenes):
    params, cfg, c = scenes
    bank, dyn = jax.device_get(params.bank), DynamicsParams()
    assert c.accepted.mean() > 0.3
    for n in range(4):
        for k in np.flatnonzero(c.accepted[n]):
            L = c.route_len[n, k]
            states = c.states[n, k, :L]
            _limits_hold(states, 0.1, dyn)
            boxes = np.concatenate([states[:, :3], np.broadcast_to(bank.ego_size[n], (L, 2))], -1)
            corners = _corners(boxes)
            if n == 2:  # junction: union of two roads
                sdf = np.minimum(np.abs(corners[..., 1]) - ROAD_HALF, np.abs(corners[..., 0] - 10.0) - ROAD_HALF)
            else:
                sdf = np.abs(corners[..., 1]) - 5.25
            assert sdf.max() <= 1e-3
            for t in range(L):
                ego = Polygon(corners[t])
                for a in np.flatnonzero(bank.agent_valid[n, t]):
                    other = _corners(np.concatenate([bank.agent_traj[n, t, a, :3], bank.agent_size[n, a]]))
                    assert not ego.intersects(Polygon(other)), (n, k, t, a)
                for s in np.flatnonzero(bank.static_valid[n]):
                    assert not ego.intersects(Polygon(_corners(bank.static_boxes[n, s])))


def test_families_and_rejections_are_what_the_scene_allows(scenes):
    _, _, c = scenes
    # the ego on the left lane (scene 3) never gets a left lane change
    assert not np.any(c.lateral[3] == ctg.Lateral.LANE_LEFT)
    # only the junction offers turns; turns end heading north or south
    assert not np.any(c.branch[[0, 1, 3]]) and np.any(c.branch[2] > 0)
    turned = (c.branch[2] > 0) & c.accepted[2]
    assert turned.any()
    ends = c.states[2, turned, 80]
    through = np.abs(np.abs(ends[:, 2]) - np.pi / 2) < 0.05  # on the north or south road
    centred = c.lateral[2, turned] == ctg.Lateral.NONE
    assert through.any()
    assert np.all(np.abs(ends[through & centred, 0] - 10.0) < 0.05)
    assert np.all(np.abs(ends[through, 0] - 10.0) < 0.65)  # lane offsets stay inside the lane
    assert np.all(ends[~through, 0] < 10.65)  # slow cousins are still in the turn
    # too fast for the 10 m turns: lateral-acceleration rejections, and they are real
    lat_rejects = np.argwhere(c.reasons & ctg.RejectReason.LAT_ACCEL)
    assert len(lat_rejects) and np.all(c.branch[lat_rejects[:, 0], lat_rejects[:, 1]] > 0)
    for n, k in lat_rejects:
        s = c.states[n, k, :81].astype(np.float64)
        lat = s[:-1, 3] * np.angle(np.exp(1j * np.diff(s[:, 2]))) / 0.1
        assert np.abs(lat).max() > DynamicsParams().max_lat_accel
    assert not np.any(c.reasons & ctg.RejectReason.NO_LANE)


@functools.partial(jax.jit, static_argnames=("window",))
def _plan(bank, polyline, speed, window):
    """Resample a polyline every 0.5 m (smoothing it like CTG's base paths if window > 1),
    drive it at constant `speed` for 8 s and check it. -> (states (81, 4), reason bits)."""
    path = paths.smooth(paths.resample(polyline, 0.5, 300), window)
    states, raw = profiles.plan_path(path, jnp.full((81,), speed, jnp.float32), 0.1, DynamicsParams())
    return states, ctg.check(bank, 0, states, raw, 81, DynamicsParams(), ctg.CTGConfig())


def _turn(radius, angle, lead):
    """(400, 2): straight lead-in along +x from the origin, a left arc of `radius`, on."""
    lead_in = np.stack([np.linspace(0.0, lead, 20, endpoint=False), np.zeros(20)], -1)
    th = np.linspace(0.0, angle, 60)
    arc = np.stack([lead + radius * np.sin(th), radius * (1 - np.cos(th))], -1)
    back = arc[-1] + np.outer(np.arange(1, 321) * 0.5, [np.cos(angle), np.sin(angle)])
    return jnp.asarray(np.concatenate([lead_in, arc, back]), jnp.float32)


def test_u_turn_through_the_curb_is_offroad():
    bank = bank_of(straight_scene())
    states, bits = _plan(bank, _turn(radius=6.0, angle=np.pi, lead=4.0), 3.0, window=5)
    bits = int(bits)
    assert np.abs(np.asarray(states[-1, 2])) > 3.0  # it did turn around
    assert bits == ctg.RejectReason.OFFROAD, ctg.reason_names(bits)
    assert int(ctg.primary_reason(jnp.int32(bits))) == ctg.RejectReason.OFFROAD


def test_too_tight_turn_is_infeasible_curvature():
    bank = bank_of(straight_scene())
    _, bits = _plan(bank, _turn(radius=1.5, angle=np.pi / 2, lead=2.0), 2.0, window=1)
    assert int(bits) & ctg.RejectReason.CURVATURE, ctg.reason_names(int(bits))
    assert int(ctg.primary_reason(bits)) == ctg.RejectReason.CURVATURE
    # the same turn with a radius the steering can reach has no curvature violation
    _, wide = _plan(bank, _turn(radius=3.0, angle=np.pi / 2, lead=2.0), 2.0, window=1)
    assert not int(wide) & ctg.RejectReason.CURVATURE, ctg.reason_names(int(wide))


def test_vmapped_equals_per_env(scenes):
    params, cfg, c = scenes
    keys = jax.random.split(KEY, 4)
    one = jax.jit(ctg.generate_cousins, static_argnames=("cfg",))
    for n in range(4):
        single = jax.device_get(one(keys[n], params.bank, n, cfg, params.dynamics))
        for name in ("reasons", "lateral", "speed", "branch", "route_len"):
            np.testing.assert_array_equal(getattr(single, name), getattr(c, name)[n])
        np.testing.assert_allclose(single.states, c.states[n], atol=1e-4)


def test_sampler_traces_once_and_is_deterministic(scenes):
    params, cfg, c = scenes
    # SAMPLE fails on a second trace; the fixture already traced it once
    again = jax.device_get(SAMPLE(KEY, params, jnp.arange(4), cfg))
    np.testing.assert_array_equal(again.states, c.states)
    other = jax.device_get(SAMPLE(jax.random.PRNGKey(4), params, jnp.array([3, 2, 1, 0]), cfg))
    assert not np.array_equal(other.states, c.states)


@pytest.mark.slow
def test_chunked_sampler_matches_one_vmap(scenes):
    params, cfg, c = scenes
    chunked = jax.device_get(jax.jit(lambda k: ctg.sample_cousins(k, params, jnp.arange(4), cfg, chunk=2))(KEY))
    np.testing.assert_array_equal(chunked.reasons, c.reasons)
    np.testing.assert_allclose(chunked.states, c.states, atol=1e-4)


@pytest.mark.parametrize(
    "kwargs, field",
    [({"num_cousins": 0}, "num_cousins"), ({"smooth_window": 4}, "smooth_window"),
     ({"lateral_weights": (0, 0, 0, 0)}, "lateral_weights"), ({"faster_factor": (1.5, 1.2)}, "faster_factor"),
     ({"speed_weights": (1, 1)}, "speed_weights")],
)  # fmt: skip
def test_config_errors_name_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        ctg.CTGConfig(**kwargs)
