"""RAD's anchor space: the reachable mask comes from the model, anchors map to controls
that reach them, and indices round-trip."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim import actions as act
from jaxsim import kinematics as kin

SPEC = act.DiscreteActionSpec()
P = kin.DynamicsParams()


def test_grid_matches_rad():
    lat, lon = SPEC.lat_values(), SPEC.lon_values()
    assert lat.shape == (61,) and lon.shape == (61,)
    assert (lat[0], lat[-1], lon[0], lon[-1]) == (-0.75, 0.75, 0.0, 15.0)


def test_reachable_mask_is_physical():
    mask = act.reachable_mask(SPEC)
    assert mask.shape == (61, 61)
    assert mask[30].all()  # straight ahead at any distance up to 15 m
    # a 0.75 m sideways step within 0.25 m of travel needs curvature beyond the steer limit
    assert not mask[0, 1] and not mask[60, 1]
    assert 0.5 < mask.mean() < 0.99
    np.testing.assert_array_equal(mask, mask[::-1])  # left/right symmetric
    # a tighter steer limit can only shrink the reachable set
    tight = act.reachable_mask(SPEC, max_steer=0.2)
    assert tight.sum() < 0.95 * mask.sum() and not np.any(tight & ~mask)


def test_anchor_controls_reach_reachable_targets():
    mask = act.reachable_mask(SPEC)
    rng = np.random.default_rng(0)
    lat, lon = SPEC.lat_values(), SPEC.lon_values()
    il, jl = np.nonzero(mask)
    pick = rng.choice(len(il), 300, replace=False)
    i, j = il[pick], jl[pick]
    target = jnp.stack([lat[i], lon[j]], -1)
    v0 = jnp.asarray(np.clip(lon[j] / SPEC.horizon + rng.uniform(-3, 3, len(i)), 0, 30), jnp.float32)
    u = act.displacement_to_controls(target, v0, SPEC.horizon, P)
    start = jnp.stack([jnp.zeros_like(v0)] * 3 + [v0], -1)
    # hold the controls for the horizon (what one anchor means in open loop)
    end = jax.vmap(lambda s, c: kin.rollout(s, jnp.tile(c, (50, 1)), SPEC.horizon / 50, P)[-1])(start, u)
    feasible = (u[:, 0] > -P.max_decel) & (u[:, 0] < P.max_accel) & (jnp.abs(u[:, 1]) < P.max_steer)
    errs = np.asarray(jnp.hypot(end[:, 1] - target[:, 0], end[:, 0] - target[:, 1]))[np.asarray(feasible)]
    assert len(errs) > 100
    assert np.percentile(errs, 95) < 0.05


def test_decode_and_nearest_round_trip_and_clip():
    idx = jnp.stack(jnp.meshgrid(jnp.arange(61), jnp.arange(61), indexing="ij"), -1).reshape(-1, 2)
    np.testing.assert_array_equal(act.nearest_anchor(act.decode_discrete(idx, SPEC), SPEC), idx)
    np.testing.assert_array_equal(act.decode_discrete(jnp.array([-5, 99]), SPEC), [-0.75, 15.0])


def test_continuous_controls_are_clipped():
    u = act.continuous_to_controls(jnp.array([100.0, -3.0]), P)
    np.testing.assert_allclose(u, [P.max_accel, -P.max_steer], rtol=1e-6)
    n = act.normalized_to_controls(jnp.array([-1.0, 1.0]), P)
    np.testing.assert_allclose(n, [-P.max_decel, P.max_steer], rtol=1e-6)


def test_displacement_controls_are_differentiable():
    g = jax.grad(lambda t: act.displacement_to_controls(t, jnp.float32(8.0), 0.5, P).sum())(jnp.array([0.3, 4.0]))
    assert np.all(np.isfinite(g)) and np.any(g != 0)
