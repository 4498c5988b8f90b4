"""BEV raster: layout, heading-up rotation, channel contents against independent geometry."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from builders import bank_of, straight_road
from shapely import affinity
from shapely.geometry import Point
from shapely.geometry import box as shapely_box

from jaxsim import bev
from jaxsim.env import DrivingEnv, EnvConfig
from jaxsim.wrappers import VmapWrapper

S, RANGE = 64, 40.0
RES = RANGE / S


def pixel_xy(r, c):
    """Ego-frame centre of pixel (r, c), written out independently of jaxsim.bev."""
    return (0.75 * S - r - 0.5) * RES, (0.5 * S - c - 0.5) * RES


@pytest.fixture(scope="module")
def setup():
    # agent 0: 10 m ahead in the ego lane; agent 1: rotated 90 deg, 12 m ahead, 6 m to the left;
    # agent 2: a pedestrian-sized box 8 m behind, right lane (smaller than a pixel diagonal)
    scen = straight_road(A=4, agents=[(10.0, 0.0, 0.0, 0.0), (12.0, 6.0, np.pi / 2, 0.0), (-8.0, -3.5, 0.0, 0.0)])
    scen["agent_size"][2] = [0.4, 0.4]
    env = DrivingEnv(EnvConfig(obs="bev", bev_size=S, bev_range=RANGE))
    params = env.default_params(bank_of(scen))
    obs, state = jax.jit(env.reset_to)(jax.random.PRNGKey(0), params, 0)
    env.observe_jit = jax.jit(env.observe)  # one compile shared by the tests below
    return env, params, np.asarray(obs), state, scen


def test_shape_dtype_binary(setup):
    env, params, obs, _, _ = setup
    assert obs.shape == (S, S, bev.NUM_CHANNELS) and obs.dtype == np.float32
    assert set(np.unique(obs)) <= {0.0, 1.0}
    assert env.observation_shape(params) == (S, S, 5)


def _expected_box_mask(x, y, yaw, length, width):
    poly = affinity.rotate(
        shapely_box(-length / 2, -width / 2, length / 2, width / 2), yaw, use_radians=True, origin=(0, 0)
    )
    poly = affinity.translate(poly, x, y)
    return np.array([[poly.covers(Point(*pixel_xy(r, c))) for c in range(S)] for r in range(S)])


def test_agent_boxes_light_expected_pixels(setup):
    _, _, obs, _, scen = setup
    expected = _expected_box_mask(10.0, 0.0, 0.0, 4.5, 1.9) | _expected_box_mask(12.0, 6.0, np.pi / 2, 4.5, 1.9)
    got = obs[..., bev.AGENTS].astype(bool)
    ped = np.zeros_like(got)
    rows, cols = np.nonzero(got)
    for r, c in zip(rows, cols):  # pixels of the pedestrian, 8 m behind on the right
        x, y = pixel_xy(r, c)
        ped[r, c] = abs(x + 8.0) < 1.0 and abs(y + 3.5) < 1.0
    assert expected.sum() > 20
    np.testing.assert_array_equal(got & ~ped, expected)
    assert 1 <= ped.sum() <= 4  # tiny box still visible, at most a pixel-sized blob
    ego = _expected_box_mask(0.0, 0.0, 0.0, 4.8, 2.0)
    np.testing.assert_array_equal(obs[..., bev.EGO].astype(bool), ego)


def test_heading_up_rotation(setup):
    env, params, _, state, _ = setup
    # face +y (yaw 90 deg): world (10, 0) is now 10 m to the ego's right, world (12, 6)
    # is 6 m ahead and 12 m right, and both boxes turn by -90 deg in the image
    rotated = state.replace(ego=jnp.array([0.0, 0.0, np.pi / 2, 0.0]))
    got = np.asarray(env.observe_jit(rotated, params))[..., bev.AGENTS].astype(bool)
    expected = _expected_box_mask(0.0, -10.0, -np.pi / 2, 4.5, 1.9) | _expected_box_mask(6.0, -12.0, 0.0, 4.5, 1.9)
    ped = _expected_box_mask(-3.5, 8.0, -np.pi / 2, 1.2, 1.2)  # the tiny box, now behind-left
    assert (got & ped).sum() >= 1
    np.testing.assert_array_equal(got & ~ped, expected)
    assert np.all(np.nonzero(expected)[1] > S // 2)  # right of the ego = right half of the image
    # facing +x with the ego 20 m back: agent 0 is 30 m ahead, straight above the ego
    back = state.replace(ego=jnp.array([-20.0, 0.0, 0.0, 0.0]))
    obs = np.asarray(env.observe_jit(back, params))
    r, c = np.nonzero(obs[..., bev.AGENTS])
    ego_row = int(0.75 * S)
    assert r.min() < ego_row - int(25 / RES) and abs(np.median(c) - S / 2) <= 1


@pytest.mark.parametrize("yaw", [0.0, 0.3, np.pi / 2])
def test_drivable_matches_builder_sdf(setup, yaw):
    env, params, _, state, _ = setup
    s = state.replace(ego=jnp.array([30.0, 1.0, yaw, 0.0]))
    obs = np.asarray(env.observe_jit(s, params))
    rr, cc = np.meshgrid(np.arange(S), np.arange(S), indexing="ij")
    lx, ly = pixel_xy(rr, cc)
    wy = 1.0 + np.sin(yaw) * lx + np.cos(yaw) * ly  # world y of each pixel centre
    sdf = np.abs(wy) - 5.25  # the builder's analytic road: |y| < 5.25 is drivable
    clear = np.abs(sdf) > RES  # leave out pixels on the boundary (bilinear blur)
    np.testing.assert_array_equal(obs[..., bev.DRIVABLE].astype(bool)[clear], (sdf < 0)[clear])
    assert obs[..., bev.DRIVABLE].sum() > 100


def test_lanes_and_route(setup):
    _, _, obs, _, _ = setup
    lanes = obs[..., bev.LANES]
    # straight lanes at y = 3.5, 0, -3.5 fill whole columns (heading-up, ego at y = 0)
    lit_cols = np.nonzero(lanes.sum(axis=0) == S)[0]
    want = sorted({int(np.floor(0.5 * S - y / RES)) for y in (3.5, 0.0, -3.5)})
    assert sorted(lit_cols.tolist()) == want
    assert lanes.sum() == 3 * S
    route = obs[..., bev.ROUTE]
    rows, cols = np.nonzero(route)
    assert set(cols.tolist()) == {S // 2}
    assert rows.max() <= int(0.75 * S) and rows.min() == 0  # from the ego to the top edge


def test_jit_vmap_and_no_retrace(setup):
    env, params, _, state, _ = setup
    venv = VmapWrapper(env, 3)
    obs, _ = jax.jit(venv.reset_to)(jax.random.PRNGKey(0), params, jnp.zeros((3,), jnp.int32))
    assert obs.shape == (3, S, S, 5)
    step = jax.jit(chex.assert_max_traces(env.step, n=1))
    key = jax.random.PRNGKey(1)
    o1, s1, *_ = step(key, state, jnp.array([30, 20]), params)
    o2, s2, *_ = step(key, s1, jnp.array([40, 25]), params)
    assert o2.shape == (S, S, 5) and not np.array_equal(np.asarray(o1), np.asarray(o2))


@pytest.mark.gpu
def test_bev_step_throughput_gpu():
    """4096 envs stepping with BEV observations on the GPU; prints env-steps/s for the record."""
    import time

    if jax.default_backend() != "gpu":
        pytest.skip("jax sees no GPU (run with JAX_PLATFORMS=cuda)")
    try:
        from jaxsim.procedural import generate_bank

        bank = generate_bank(64, split="train", seed=0)
    except ImportError:  # before the generator lands: hand-built roads with traffic
        bank = bank_of(*[straight_road(A=32, agents=[(10.0 * k, 3.5 * (k % 3 - 1), 0.0, 8.0) for k in range(12)])] * 8)
    n = 4096
    env = VmapWrapper(DrivingEnv(EnvConfig(obs="bev", action_space="continuous")), n)
    params = env.default_params(bank)
    obs, state = jax.jit(env.reset)(jax.random.PRNGKey(0), params)

    @jax.jit
    def run(state, key):
        def body(s, k):
            o, s, *_ = env.step(k, s, jnp.zeros((n, 2)), params)
            return s, jnp.sum(o, axis=(1, 2, 3))  # use every pixel: nothing is dead code

        return jax.lax.scan(body, state, jax.random.split(key, 20))

    jax.block_until_ready(run(state, jax.random.PRNGKey(1)))
    t0 = time.perf_counter()
    jax.block_until_ready(run(state, jax.random.PRNGKey(2)))
    rate = 20 * n / (time.perf_counter() - t0)
    print(f"BEV {S}x{S}x5, {n} envs: {rate:,.0f} env-steps/s on {jax.devices()[0].device_kind}")
    assert obs.shape == (n, S, S, 5)
    assert rate > 2e5


def test_scanline_boxes_match_point_in_box():
    """Random boxes (any yaw, partly off the image, tiny ones) against a dense numpy test."""
    cfg = EnvConfig(obs="bev", bev_size=S, bev_range=RANGE)
    rng = np.random.default_rng(0)
    k = 40
    boxes = np.stack([rng.uniform(-25, 35, k), rng.uniform(-25, 25, k), rng.uniform(-np.pi, np.pi, k),
                      rng.uniform(0.3, 12.0, k), rng.uniform(0.3, 3.0, k)], -1).astype(np.float32)  # fmt: skip
    boxes[0, 2] = 0.0  # exactly axis-aligned boxes take the degenerate-interval path
    boxes[1, 2] = np.pi / 2
    valid = rng.uniform(size=k) < 0.8
    got = np.asarray(jax.jit(lambda b, v: bev._boxes(cfg, b, v))(boxes, valid)).astype(bool)
    px, py = pixel_xy(*np.meshgrid(np.arange(S), np.arange(S), indexing="ij"))
    want = np.zeros((S, S), bool)
    for x, y, yaw, length, width in boxes[valid]:
        hl, hw = max(length / 2, RES / np.sqrt(2)), max(width / 2, RES / np.sqrt(2))
        u = (px - x) * np.cos(yaw) + (py - y) * np.sin(yaw)
        w = -(px - x) * np.sin(yaw) + (py - y) * np.cos(yaw)
        want |= (np.abs(u) <= hl) & (np.abs(w) <= hw)
    assert want.sum() > 200
    assert (got != want).sum() <= 2  # float rounding on box edges only
