"""DAA in the closed loop. One batch of hand-placed and random scenes is played once per
ego policy (expert replay, a yielding ego); the tests read their envs from it.

Hand-placed envs: 0 cut-in from the left, 1 hard brake of a lead, 2 a slower lead that
brakes once the ego is within 8 m (the expert gets that close, the yielding ego does not).
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsim import daa
from jaxsim.daa import check as ck
from jaxsim.daa import search
from jaxsim.daa.scenes import corner_case_bank
from jaxsim.env import DrivingEnv, EnvConfig
from jaxsim.wrappers import broadcast_params

ENV = DrivingEnv(EnvConfig(action_space="continuous", obs="none"))
T = 61
FIXED = [dict(ego_speed=10.0, agents=[(0, -3.0, 10.5)]), dict(ego_speed=10.0, agents=[(1, 18.0, 10.0)]),
         dict(ego_speed=10.0, agents=[(1, 22.0, 8.0)])]  # fmt: skip
KNOBS = dict(trigger_gap=20.0, trigger_ttc=3.0, lat_duration=2.0, final_gap=5.0, decel=5.0, speed_offset=-1.0)
FIXED_DAA = [(daa.Behaviour.CUT_IN_LEFT, {}), (daa.Behaviour.HARD_BRAKE, dict(trigger_gap=15.0)),
             (daa.Behaviour.HARD_BRAKE, dict(trigger_gap=8.0, trigger_ttc=1.0))]  # fmt: skip
NUM_RANDOM = 21


def play(params, idx, policy_name):
    """Per-step ego, adversary and flags of one episode (T - 1 steps) and the reset state."""
    policy = search.expert_policy if policy_name == "expert" else search.yielding_policy(ENV)
    key = jax.random.PRNGKey(0)
    _, s0 = ENV.reset_to(key, params, idx)

    def body(carry, _):
        s, done = carry
        _, s2, _, term, trunc, info = ENV.step(key, s, policy(s, params), params)
        hit_adv = info["events"].dynamic_collision & s2.adv.active & ~done
        out = {"ego": s2.ego, "adv": s2.adv.pose, "tau": s2.adv.tau, "done": done, "t_trigger": s2.adv.t_trigger,
               "dyn": info["events"].dynamic_collision, "hit_adv": hit_adv}  # fmt: skip
        return (s2, done | term | trunc), out

    _, outs = jax.lax.scan(body, (s0, jnp.zeros((), bool)), None, length=T - 1)
    return s0, outs


def axes_of(params):
    return jax.tree.map(lambda _: 0, params.replace(bank=None)).replace(bank=None)


@pytest.fixture(scope="module")
def batch():
    bank = corner_case_bank(NUM_RANDOM, seed=3, fixed=FIXED, T=T)
    n = len(FIXED) + NUM_RANDOM
    fixed = [daa.params_for(b, daa.Knobs(**{**KNOBS, **kw})) for b, kw in FIXED_DAA]
    rand = daa.sample_params(jax.random.PRNGKey(4), NUM_RANDOM, daa.DAAConfig(weights=(0, 1, 1, 2, 1, 1)))
    fixed = jax.tree.map(lambda *x: jnp.stack(x), *fixed)
    d = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), fixed, rand)
    params = broadcast_params(ENV.default_params(bank), n).replace(daa=d)
    run = jax.jit(jax.vmap(play, in_axes=(axes_of(params), 0, None)), static_argnums=2)
    return params, n, {name: run(params, jnp.arange(n), name) for name in ("expert", "yield")}


def env_out(batch, policy, e):
    s0, o = batch[2][policy]
    return jax.tree.map(lambda x: x[e], s0), jax.tree.map(lambda x: np.asarray(x[e]), o)


def test_cut_in_enters_ego_lane_ahead_within_gap_and_time(batch):
    s0, o = env_out(batch, "expert", 0)
    assert int(s0.adv.slot) == 0 and not bool(s0.adv.spawned) and int(s0.adv.status) == 0
    adv, ego = o["adv"], o["ego"]
    inside = np.abs(adv[:, 1]) < 1.75  # centre inside the ego's 3.5 m lane
    assert inside.any(), "the cut-in never entered the ego's lane"
    k = int(np.argmax(inside))
    gap = adv[k, 0] - ego[k, 0] - 0.5 * (4.8 + 4.5)
    assert 0.0 <= gap <= KNOBS["final_gap"] + 1.0, gap
    assert 0.0 < float(o["tau"][k]) <= KNOBS["lat_duration"] + 0.1  # within the lateral duration of starting
    assert not o["dyn"][: k + 1].any()  # no side-swipe on the way in
    assert np.max(np.abs(adv[k + 25 :, 1])) < 0.3  # and settles on the lane centre


def test_hard_brake_deceleration_within_limits(batch):
    params = batch[0]
    for policy in ("expert", "yield"):
        s0, o = env_out(batch, policy, 1)
        assert int(s0.adv.status) == 0 and int(s0.adv.slot) == 0
        v = o["adv"][:, 3]
        acc = np.diff(v) / 0.1
        decel = KNOBS["decel"]
        assert -decel - 1e-3 <= acc.min() <= -0.95 * decel  # reaches, never exceeds, its deceleration
        assert np.abs(np.diff(acc) / 0.1).max() <= float(params.dynamics.max_jerk[0]) * 1.001
        assert v[-1] < 1e-3 and np.abs(o["adv"][:, 1]).max() < 0.05


def test_trigger_follows_the_simulated_ego(batch):
    """The same adversary brakes for the expert (it closes to 8 m) but never for the yielding ego."""
    _, expert = env_out(batch, "expert", 2)
    _, yielding = env_out(batch, "yield", 2)
    assert expert["t_trigger"][-1] > 0 and yielding["t_trigger"][-1] == -1


@pytest.mark.parametrize("policy", ["expert", "yield"])
def test_every_emitted_trajectory_passes_the_check(batch, policy):
    params, n, _ = batch
    bank, dyn = params.bank, ENV.default_params(params.bank).dynamics
    checked = 0
    for e in range(n):
        s0, o = env_out(batch, policy, e)
        adv0 = s0.adv
        if not bool(adv0.active):
            assert int(adv0.status) != 0  # a plain episode always says why
            continue
        steps = int(np.argmax(o["done"])) if o["done"].any() else len(o["done"])
        traj = jnp.concatenate([adv0.pose[None], o["adv"][:steps]])
        ego = jnp.concatenate([bank.ego_traj[e, :1], o["ego"][:steps]])
        t_trig = int(o["t_trigger"][steps - 1])
        start = 0 if bool(adv0.spawned) else max(t_trig, 0)
        reason = ck.check_trajectory(traj, start, t_trig, ego, bank.ego_size[e], adv0.size, bank.sdf, e,
                                     bank.sdf_origin[e], bank.sdf_res[e], dyn, bank.dt[e])  # fmt: skip
        assert int(reason) in (ck.Reason.OK, ck.Reason.NO_TRIGGER), (e, daa.REASON_NAMES[int(reason)])
        checked += 1
    assert checked >= n // 2


def test_expert_replay_plays_exactly_the_checked_plan(batch):
    params = batch[0]
    bank = params.bank
    s0, o = env_out(batch, "expert", 0)
    dyn = ENV.default_params(bank).dynamics
    planned, _ = ck.rollout(s0.adv, bank.ego_traj[0], bank.ego_size[0], bank, 0, dyn, bank.dt[0])
    np.testing.assert_allclose(o["adv"], np.asarray(planned[1:]), atol=2e-3)


def test_corner_cases_are_real(batch):
    """Expert replay collides with the adversary in a clearly non-zero share of cut-in and
    hard-brake episodes; the yielding ego in fewer."""
    params, n, runs = batch
    beh = np.asarray(runs["expert"][0].adv.behaviour)
    sel = np.isin(beh, [1, 2, 3])
    assert sel.sum() >= 8
    share = {p: np.asarray(runs[p][1]["hit_adv"]).any(axis=1)[sel].mean() for p in runs}
    assert share["expert"] >= 0.2, share
    assert share["yield"] < share["expert"], share


def test_vmapped_equals_per_env(batch):
    params, n, runs = batch
    one = jax.jit(play, static_argnums=2)
    for e in (0, 5, n - 1):
        p = jax.tree.map(lambda x: x[e], params.replace(bank=None)).replace(bank=params.bank)
        s0, o = one(p, e, "expert")
        s0b, ob = env_out(batch, "expert", e)
        chex.assert_trees_all_close(s0.adv, s0b.adv, atol=1e-5)
        chex.assert_trees_all_close(jax.tree.map(np.asarray, o), ob, atol=1e-4)


def test_step_traces_once_and_daa_off_is_log_replay(batch):
    params = batch[0]
    p = jax.tree.map(lambda x: x[0], params.replace(bank=None)).replace(bank=params.bank)
    step = jax.jit(chex.assert_max_traces(ENV.step, n=1))
    _, s = ENV.reset_to(jax.random.PRNGKey(0), p, 0)
    for k in range(3):
        _, s, *_ = step(jax.random.PRNGKey(k), s, jnp.array([0.0, 0.0]), p)
    off = ENV.default_params(params.bank)
    _, s_off = ENV.reset_to(jax.random.PRNGKey(0), off, 0)
    agents, valid, _ = ENV.current_agents(s_off, off)
    np.testing.assert_array_equal(np.asarray(agents), np.asarray(params.bank.agent_traj[0, 0]))
    assert int(s_off.adv.slot) == -1
