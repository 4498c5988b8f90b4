"""Hand-built CTG scenes with known geometry (a junction with three exits), and tests of
the base paths CTG builds from them."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from builders import straight_road

from jaxsim.ctg import paths
from jaxsim.scenario import FIELD_SPECS, from_numpy

ROAD_HALF = 7.0  # both roads of the junction are |offset| < 7 m


def _polyline(points: np.ndarray, P: int) -> np.ndarray:
    """Resample a dense polyline to P points, evenly by arc length."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=-1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    s = np.linspace(0.0, cum[-1], P)
    return np.stack([np.interp(s, cum, points[:, 0]), np.interp(s, cum, points[:, 1])], -1)


def junction_road(T: int = 81, speed: float = 6.0, x0: float = -30.0, radius: float = 10.0) -> dict:
    """Ego drives +x along y=0 from x0 through a junction at x=0 and goes straight.

    Lanes: 0 approach (x -60..0), successors 1 straight (0..100), 2 left turn (arc of
    `radius` to heading +y, then north along x=radius), 3 right turn (mirror). Drivable
    area: horizontal road |y| < 7 plus vertical road |x - radius| < 7.
    """
    a = straight_road(T=T, speed=speed)
    P, L, H, W = 48, 4, 160, 200
    t = np.arange(T) * 0.1
    ego_x = x0 + speed * t
    a["ego_traj"] = np.stack([ego_x, np.zeros(T), np.zeros(T), np.full(T, speed)], -1).astype(np.float32)
    a["ego_lane"] = np.where(ego_x < 0.0, 0, 1).astype(np.int32)
    th = np.linspace(0.0, np.pi / 2, 40)
    arc = np.stack([radius * np.sin(th), radius * (1 - np.cos(th))], -1)
    north = np.stack([np.full(30, radius), np.linspace(radius, 70.0, 30)], -1)
    left = np.concatenate([arc, north[1:]])
    right = left * np.array([1.0, -1.0])
    lanes = [
        np.stack([np.linspace(-60.0, 0.0, 10), np.zeros(10)], -1),
        np.stack([np.linspace(0.0, 100.0, 10), np.zeros(10)], -1),
        left,
        right,
    ]
    a["lane_points"] = np.stack([_polyline(p, P) for p in lanes]).astype(np.float32)
    a["lane_num_points"] = np.full(L, P, np.int32)
    a["lane_width"] = np.full(L, 3.5, np.float32)
    a["lane_left"] = np.full(L, -1, np.int32)
    a["lane_right"] = np.full(L, -1, np.int32)
    succ = np.full((L, 3), -1, np.int32)
    succ[0] = [1, 2, 3]
    a["lane_succ"] = succ
    origin = np.array([-70.0, -80.0], np.float32)
    xs = origin[0] + np.arange(W)
    ys = origin[1] + np.arange(H)
    gx, gy = np.meshgrid(xs, ys)
    a["sdf"] = np.minimum(np.abs(gy) - ROAD_HALF, np.abs(gx - radius) - ROAD_HALF).astype(np.float32)
    a["sdf_origin"] = origin
    a["layout"] = np.int32(2)
    assert set(a) == set(FIELD_SPECS)
    return a


def test_junction_finds_the_two_other_exits():
    bank = from_numpy({k: v[None] for k, v in junction_road().items()}, batched=True)
    t_exit, lane, alts, ok = paths.junction(bank, 0, jnp.int32(81))
    assert int(lane) == 0 and int(t_exit) == 50  # x = -30 + 6 t reaches 0 at t = 5 s
    assert sorted(np.asarray(alts).tolist()) == [2, 3] and bool(np.all(ok))


def test_base_paths_follow_the_log_then_the_lane_graph():
    bank = from_numpy({k: v[None] for k, v in junction_road().items()}, batched=True)
    bases, ok = jax.jit(lambda: paths.base_paths(bank, 0, jnp.int32(81), 1.0, 200, 4, 5))()
    bases = np.asarray(bases)
    assert ok.tolist() == [True, True, True]
    np.testing.assert_allclose(bases[:, 0], [[-30.0, 0.0]] * 3, atol=1e-4)  # all start at the ego
    # base 0 continues straight along lane 1 beyond the log's end (x = 18)
    assert np.abs(bases[0, :, 1]).max() < 1e-3 and bases[0, -1, 0] > 160
    # the alternatives end up on the north and south roads, 1 m apart, at x = 10
    ends = {round(float(np.sign(b[-1, 1]))): b for b in bases[1:]}
    for sign, b in ends.items():
        np.testing.assert_allclose(b[-1, 0], 10.0, atol=0.05)
        assert sign * b[-1, 1] > 100
    step = np.linalg.norm(np.diff(bases, axis=1), axis=-1)
    assert step.max() < 1.0 + 1e-3 and step.min() > 0.9


def straight_scene(T: int = 81, ego_y: float = 0.0, **kw) -> dict:
    """`straight_road` on the junction's grid sizes (P = 48, SDF 160 x 200), so both
    stack into one bank. `ego_y` 3.5 / 0 / -3.5 puts the ego on lane 0 / 1 / 2."""
    a = straight_road(T=T, **kw)
    a["lane_points"] = np.stack([_polyline(p, 48) for p in a["lane_points"][:3]] + [np.zeros((48, 2))]).astype(
        np.float32
    )
    a["lane_num_points"] = np.array([48, 48, 48, 0], np.int32)
    origin = np.array([-70.0, -80.0], np.float32)
    ys = origin[1] + np.arange(160)
    a["sdf"] = np.tile((np.abs(ys) - 5.25)[:, None], (1, 200)).astype(np.float32)
    a["sdf_origin"] = origin
    a["ego_traj"][:, 1] = ego_y
    a["ego_lane"][:] = {3.5: 0, 0.0: 1, -3.5: 2}[ego_y]
    return a
