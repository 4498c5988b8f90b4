"""Bicycle model against closed-form solutions of its own Euler scheme, the analytic
inverse on random states, and gradients against finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsim import kinematics as kin

P = kin.DynamicsParams()


def enable_x64():
    """float64 context on old (jax.experimental) and new (jax.enable_x64) JAX."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64 as ctx

    return ctx()


DT = 0.1


def test_straight_line_with_constant_accel_matches_closed_form():
    v0, a, n = 5.0, 1.5, 30
    states = kin.rollout(jnp.array([1.0, 2.0, 0.3, v0]), jnp.tile(jnp.array([a, 0.0]), (n, 1)), DT, P)
    k = np.arange(1, n + 1)
    dist = k * v0 * DT + a * DT**2 * k * (k - 1) / 2  # sum of speeds before each update
    np.testing.assert_allclose(states[:, 0], 1.0 + dist * np.cos(0.3), rtol=1e-5)
    np.testing.assert_allclose(states[:, 1], 2.0 + dist * np.sin(0.3), rtol=1e-5)
    np.testing.assert_allclose(states[:, 3], v0 + a * DT * k, rtol=1e-6)


def test_constant_steer_is_a_geometric_sum_and_converges_to_the_circle():
    v, steer, n = 8.0, 0.2, 40
    states = kin.rollout(jnp.array([0.0, 0.0, 0.0, v]), jnp.tile(jnp.array([0.0, steer]), (n, 1)), DT, P)
    w = v / P.wheelbase * np.tan(steer) * DT  # yaw change per step
    k = np.arange(1, n + 1)
    z = v * DT * (1 - np.exp(1j * w * k)) / (1 - np.exp(1j * w))  # sum_{j<k} v dt e^{i j w}
    np.testing.assert_allclose(states[:, 0], z.real, atol=1e-4)
    np.testing.assert_allclose(states[:, 1], z.imag, atol=1e-4)
    # small dt: points lie on the circle of radius L / tan(steer) centred at (0, R)
    fine = kin.rollout(jnp.array([0.0, 0.0, 0.0, v]), jnp.tile(jnp.array([0.0, steer]), (4000, 1)), 0.001, P)
    radius = P.wheelbase / np.tan(steer)
    r = np.hypot(np.asarray(fine[:, 0]), np.asarray(fine[:, 1]) - radius)
    assert np.max(np.abs(r - radius)) < 0.02


def test_speed_is_clipped_to_limits():
    s = kin.step(jnp.array([0.0, 0.0, 0.0, 1.0]), jnp.array([-8.0, 0.0]), 1.0, P)
    assert float(s[3]) == 0.0
    s = kin.step(jnp.array([0.0, 0.0, 0.0, 31.9]), jnp.array([4.0, 0.0]), 1.0, P)
    assert float(s[3]) == pytest.approx(float(P.max_speed))


def test_inverse_recovers_random_controls():
    rng = np.random.default_rng(0)
    n = 512
    state = np.stack(
        [rng.uniform(-50, 50, n), rng.uniform(-50, 50, n), rng.uniform(-np.pi, np.pi, n), rng.uniform(0.5, 30, n)], -1
    ).astype(np.float32)
    controls = np.stack([rng.uniform(-3, 1.5, n), rng.uniform(-0.8, 0.8, n)], -1).astype(np.float32)
    nxt = kin.step(jnp.asarray(state), jnp.asarray(controls), DT, P)
    rec = kin.inverse(jnp.asarray(state), nxt, DT, P)
    np.testing.assert_allclose(rec, controls, atol=2e-3)
    again = kin.step(jnp.asarray(state), rec, DT, P)
    np.testing.assert_allclose(again, nxt, atol=1e-4)


def test_expert_controls_replay_a_bicycle_log():
    rng = np.random.default_rng(1)
    controls = np.stack([rng.uniform(-2, 2, 60), 0.3 * np.sin(np.arange(60) / 7)], -1).astype(np.float32)
    log = jnp.concatenate(
        [
            jnp.array([[0.0, 0.0, 0.5, 10.0]]),
            kin.rollout(jnp.array([0.0, 0.0, 0.5, 10.0]), jnp.asarray(controls), DT, P),
        ]
    )
    rec = kin.expert_controls(log, DT, P)
    replay = kin.rollout(log[0], rec, DT, P)
    np.testing.assert_allclose(replay, log[1:], atol=1e-3)


def test_rollout_gradient_matches_finite_differences():
    with enable_x64():
        p = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), P)
        s0 = jnp.array([0.0, 0.0, 0.1, 6.0], jnp.float64)
        u = jnp.stack([0.5 * jnp.ones(15), 0.1 * jnp.sin(jnp.arange(15.0))], -1)

        def end_pose(u):
            s = kin.rollout(s0, u, DT, p)[-1]
            return s[0] + 2.0 * s[1] + 3.0 * s[2] + 0.5 * s[3]

        g = jax.grad(end_pose)(u)
        eps = 1e-6
        fd = np.zeros(u.shape)
        for i in range(u.shape[0]):
            for j in range(2):
                d = jnp.zeros_like(u).at[i, j].set(eps)
                fd[i, j] = (end_pose(u + d) - end_pose(u - d)) / (2 * eps)
        np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-7)
        assert np.all(np.abs(np.asarray(g)) > 0)  # every control influences the end pose
