"""The env contract (`jaxsim.base`) over every wrapper stack the project ships: vmap,
auto-reset, restart, cousin reset and DAA. Each stack runs several episode ends per
env and must keep the reset distribution across auto-resets, keep the final
observation, and keep shapes and dtypes (one trace of `step`)."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from builders import bank_of, straight_road

from jaxsim import base
from jaxsim.ctg.reset import CousinBank, CousinResetWrapper, with_cousin_bank
from jaxsim.env import DrivingEnv, EnvConfig
from jaxsim.wrappers import AutoResetWrapper, RestartState, RestartWrapper, VmapWrapper, Wrapper, broadcast_params

T, N, K, E = 21, 3, 4, 4  # log steps, scenarios, cousins per scenario, envs
EPISODE = 3  # env steps per episode (max_steps): 10 steps end every env's episode 3 times
STEPS = 10
BANK = bank_of(*[straight_road(T=T, speed=s) for s in (8.0, 10.0, 12.0)])
CFG = EnvConfig(action_space="continuous", obs="vector", max_steps=EPISODE, num_obs_agents=2,
                num_lane_points=4, num_route_points=4)  # fmt: skip
ACCEPTED = np.array([True, True, False, True])  # cousin 2 is rejected: never a start


def cousin_bank():
    """Cousin k of scenario i: its log shifted (k + 1) * 0.5 m to the left."""
    ego = np.asarray(BANK.ego_traj)
    routes = np.repeat(ego[:, None], K, axis=1).copy()
    routes[..., 1] += 0.5 * (np.arange(K) + 1.0)[None, :, None]
    return CousinBank(routes=jnp.asarray(routes), route_len=jnp.full((N, K), T, jnp.int32),
                      accepted=jnp.asarray(np.tile(ACCEPTED, (N, 1))))  # fmt: skip


def allowed_routes(state, params, cousins: bool):
    """Per env, the start routes the reset distribution allows: (E, R, T, 4)."""
    idx = np.asarray(state.scenario_idx)
    if cousins:
        return np.asarray(params.cousins.routes)[idx][:, ACCEPTED]
    return np.asarray(params.bank.ego_traj)[idx][:, None]


def daa_params(base_params):
    from jaxsim import daa

    p = broadcast_params(base_params, E)
    cfg = daa.DAAConfig(weights=(0.0, 0.0, 0.0, 1.0, 0.0, 0.0), fallback="spawn")  # hard brake, spawned if needed
    return p.replace(daa=daa.sample_params(jax.random.PRNGKey(3), E, cfg))


def make_stack(name):
    """(batched env, params, starts on cousins?, unused)."""
    env = DrivingEnv(CFG)
    params = env.default_params(BANK)
    if name == "vmap+autoreset":
        return VmapWrapper(AutoResetWrapper(env, keep_final_state=True), E), params, False, False
    if name == "vmap+restart":
        return VmapWrapper(RestartWrapper(env), E), params, False, False
    if name == "vmap+autoreset+cousins":
        venv = VmapWrapper(AutoResetWrapper(CousinResetWrapper(env, p_expert=0.0)), E)
        return venv, with_cousin_bank(params, cousin_bank()), True, False
    if name == "vmap+restart+cousins":
        venv = VmapWrapper(RestartWrapper(CousinResetWrapper(env, p_expert=0.0)), E, batched_params=True)
        return venv, broadcast_params(with_cousin_bank(params, cousin_bank()), E), True, False
    if name == "vmap(batched)+autoreset+daa":
        return VmapWrapper(AutoResetWrapper(env), E, batched_params=True), daa_params(params), False, False
    raise KeyError(name)


def inner(state):
    return state.env if isinstance(state, RestartState) else state


STACKS = ["vmap+autoreset", "vmap+restart", "vmap+autoreset+cousins", "vmap+restart+cousins",
          "vmap(batched)+autoreset+daa"]  # fmt: skip


@pytest.mark.parametrize("name", STACKS)
def test_stack_keeps_the_contract_over_several_episode_ends(name):
    venv, params, cousins, _ = make_stack(name)
    plain = VmapWrapper(venv.unwrapped, E, venv.batched_params)  # no reset: the reference step
    restart = isinstance(venv.env, RestartWrapper)
    obs, state = jax.jit(venv.reset)(jax.random.PRNGKey(0), params)
    chex.clear_trace_counter()  # the counter is per function, and every stack's step is `Env.step`
    step = jax.jit(chex.assert_max_traces(venv.step, n=1))
    ref_step = jax.jit(plain.step)
    obs_shape = (E,) + venv.observation_shape(params)
    action = jnp.zeros((E,) + venv.action_shape, jnp.float32)
    spec0 = jax.tree.map(lambda x: (x.shape, x.dtype), (obs, state))
    starts = [inner(state)]
    ends = np.zeros(E, int)
    for k in range(STEPS):
        before = inner(state)
        ref_obs, ref_state, ref_r, ref_term, ref_trunc, _ = ref_step(jax.random.PRNGKey(9), before, action, params)
        obs, state, r, term, trunc, info = step(jax.random.fold_in(jax.random.PRNGKey(1), k), state, action, params)
        # shapes and dtypes never change; the observation is one env's shape per env
        assert jax.tree.map(lambda x: (x.shape, x.dtype), (obs, state)) == spec0
        assert obs.shape == obs_shape and obs.dtype == jnp.float32
        assert r.shape == term.shape == trunc.shape == (E,) and term.dtype == trunc.dtype == jnp.bool_
        # the step before the reset is the plain step; its observation is kept
        np.testing.assert_array_equal(np.asarray(info["done"]), np.asarray(ref_term | ref_trunc))
        np.testing.assert_allclose(np.asarray(r), np.asarray(ref_r), atol=1e-6)
        np.testing.assert_allclose(np.asarray(info["final_obs"]), np.asarray(ref_obs), atol=1e-5)
        if "final_state" in info:  # keep_final_state: the ended episode's last state
            chex.assert_trees_all_close(info["final_state"], ref_state, atol=1e-5)
        done = np.asarray(info["done"])
        ends += done
        assert np.all(np.asarray(info["episode"]["steps"])[done] <= EPISODE)
        now = inner(state)
        if done.any():
            starts.append(jax.tree.map(lambda x, m=done: x[m], now))
            if restart:  # restart: exactly the cached start
                chex.assert_trees_all_equal(jax.tree.map(lambda x, m=done: x[m], state.first), starts[-1])
        # observations belong to the (possibly new) episode's state
        np.testing.assert_allclose(np.asarray(obs), np.asarray(plain.observe(now, params)), atol=1e-5)
    assert ends.min() >= 3, ends
    # every start (the first and each auto-reset) is drawn from the reset distribution
    for s in starts:
        assert np.all(np.asarray(s.t) == 0) and np.all(np.asarray(s.steps) == 0)
        np.testing.assert_allclose(np.asarray(s.ego), np.asarray(s.route)[:, 0], atol=1e-6)
        allowed = allowed_routes(s, params, cousins)
        route = np.asarray(s.route)[:, None]
        assert np.all(np.any(np.all(np.isclose(allowed, route), axis=(-1, -2)), axis=1)), name
    if cousins:  # the expert log is never a start with p_expert=0, and several cousins are used
        later = jax.tree.map(lambda *x: np.concatenate(x), *starts[1:])
        expert = np.asarray(params.bank.ego_traj)[np.asarray(later.scenario_idx)]
        assert not np.any(np.all(np.isclose(np.asarray(later.route), expert), axis=(-1, -2)))
        offsets = set(np.round(np.asarray(later.route)[:, 0, 1] - expert[:, 0, 1], 2).tolist())
        assert len(offsets) >= 2, offsets


def test_cousin_starts_survive_auto_reset_without_vmap():
    """Regression: AutoResetWrapper restarted CousinResetWrapper episodes on the expert log
    (it called the inner env's `reset_state`, which the cousin wrapper did not override)."""
    env = AutoResetWrapper(CousinResetWrapper(DrivingEnv(CFG), p_expert=0.0))
    params = with_cousin_bank(env.default_params(BANK), cousin_bank())
    _, state = env.reset_to(jax.random.PRNGKey(0), params, 1)
    step = jax.jit(env.step)
    routes = np.asarray(params.cousins.routes)
    for k in range(2 * EPISODE):
        _, state, *_, info = step(jax.random.PRNGKey(k), state, jnp.zeros(2), params)
        if bool(info["done"]):
            i = int(state.scenario_idx)
            assert any(np.allclose(np.asarray(state.route), routes[i, c]) for c in np.flatnonzero(ACCEPTED))
            assert not np.allclose(np.asarray(state.route), np.asarray(params.bank.ego_traj[i]))
    assert int(state.steps) == 0  # the loop ended right after the second episode end


def test_every_contract_method_is_declared_and_forwarded_explicitly():
    for name in base.CONTRACT:
        assert hasattr(base.Env, name), name
    for name in base.PRIMITIVES + base.QUERIES:
        assert name in vars(Wrapper), f"Wrapper does not forward {name} explicitly"
    for cls in (AutoResetWrapper, RestartWrapper, VmapWrapper, CousinResetWrapper):
        assert not set(base.DERIVED) & set(vars(cls)), cls
    with pytest.raises(TypeError, match="primitives"):

        class Bad(Wrapper):  # noqa: F841
            def reset(self, key, params):
                return self.env.reset(key, params)

    with pytest.raises(TypeError):
        Wrapper(object())
    with pytest.raises(TypeError):
        base.Env()  # abstract


def test_a_wrapper_that_changes_starts_changes_every_reset():
    """Overriding the reset primitives is enough for reset, reset_to and auto-resets."""

    class MarkStart(Wrapper):
        def reset_state(self, key, params):
            return self.env.reset_state(key, params).replace(progress=jnp.float32(-7.0))

        def reset_to_state(self, key, params, scenario_idx):
            return self.env.reset_to_state(key, params, scenario_idx).replace(progress=jnp.float32(-7.0))

    env = AutoResetWrapper(MarkStart(DrivingEnv(CFG)))
    params = env.default_params(BANK)
    assert float(env.reset(jax.random.PRNGKey(0), params)[1].progress) == -7.0
    _, state = env.reset_to(jax.random.PRNGKey(0), params, 0)
    assert float(state.progress) == -7.0
    for k in range(EPISODE):
        _, state, *_, info = env.step(jax.random.PRNGKey(k), state, jnp.zeros(2), params)
    assert bool(info["done"]) and float(state.progress) == -7.0
    # non-contract attributes still reach down the stack; contract ones are explicit
    venv = VmapWrapper(env, 2)
    assert AutoResetWrapper(venv).num_envs == 2 and venv.keep_final_obs
    assert venv.unwrapped is env.unwrapped and venv.config is CFG


def test_vmapped_current_agents_and_restart_unwrap():
    env = DrivingEnv(CFG)
    params = env.default_params(bank_of(straight_road(T=T, agents=[(20.0, 0.0, 0.0, 5.0)]), straight_road(T=T)))
    venv = VmapWrapper(RestartWrapper(env), 2)
    _, state = venv.reset_to(jax.random.PRNGKey(0), params, jnp.array([0, 1]))
    agents, valid, sizes = venv.current_agents(state, params)
    assert agents.shape == (2, 4, 4) and valid.shape == (2, 4) and sizes.shape == (2, 4, 2)
    np.testing.assert_array_equal(np.asarray(valid[:, 0]), [True, False])


@pytest.mark.parametrize("side", [1.0, -1.0])
def test_ego_reference_point_is_the_box_centre(side):
    """The ego's (x, y) is the centre of its box (jaxsim.scenario): a static box just
    clear of the front or the rear bumper does not touch it, one 5 cm closer does."""
    half = 0.5 * 4.8 + 0.5 * 2.0  # ego half length + the static box's half length
    env = DrivingEnv(EnvConfig(action_space="continuous", obs="none"))

    def touches(gap):
        box = (side * (half + gap), 0.0, 0.0, 2.0, 1.0)
        params = env.default_params(bank_of(straight_road(T=T, speed=0.0, static_boxes=[box])))
        _, state = env.reset_to(jax.random.PRNGKey(0), params, 0)
        info = env.step(jax.random.PRNGKey(0), state, jnp.zeros(2), params)[-1]
        return bool(info["events"].static_collision)

    assert not touches(0.05) and touches(-0.05)
