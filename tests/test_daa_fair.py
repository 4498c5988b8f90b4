"""Fair adversaries: the DAA check rejects plans that full braking from the logged ego
state cannot avoid (Reason.UNAVOIDABLE), keeps feasible ones, reports the share, and
`keep_unavoidable` keeps unfair plans for stress tests."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim import daa
from jaxsim.daa import check as ck
from jaxsim.kinematics import DynamicsParams

T, DT, V = 60, 0.1, 15.0
EGO = jnp.asarray(np.stack([V * np.arange(T) * DT, np.zeros(T), np.zeros(T), np.full(T, V)], -1), jnp.float32)
SIZE = jnp.array([4.8, 2.0])


def _cut_in(offset: float, speed: float, t_trigger: int = 10, duration: float = 1.0):
    """An adversary in the left lane `offset` m (centre to centre) ahead of the logged ego
    at the ego's speed until `t_trigger`, then at `speed` while moving into the ego's
    lane over `duration` s."""
    t = np.arange(T) * DT
    tt = t_trigger * DT
    x = np.where(t < tt, V * t, V * tt + speed * (t - tt)) + offset
    y = 3.5 * (1.0 - np.clip((t - tt) / duration, 0.0, 1.0))
    v = np.where(t < tt, V, speed)
    return jnp.asarray(np.stack([x, y, np.zeros(T), v], -1), jnp.float32)


def test_braking_ego_follows_the_path_and_stops():
    b = np.asarray(ck.braking_ego(EGO, 10, 8.0, DT))
    np.testing.assert_allclose(b[:11], np.asarray(EGO[:11]), atol=1e-5)
    stop_x = V * 1.0 + V * V / (2 * 8.0)
    assert abs(b[-1, 0] - stop_x) < 0.05 and b[-1, 3] == 0.0 and np.all(np.abs(b[:, 1]) < 1e-6)


def test_unavoidable_rejects_an_impossible_cut_in_and_keeps_a_feasible_one():
    dyn = DynamicsParams()
    # cuts in over the ego's front bumper and stops dead: no braking avoids it
    impossible = _cut_in(offset=3.0, speed=0.0, duration=0.3)
    # cuts in 15 m ahead, 5 m/s slower than the ego: braking avoids it
    feasible = _cut_in(offset=15.0, speed=V - 5.0)
    assert bool(ck.unavoidable(impossible, 10, EGO, SIZE, SIZE, dyn, DT))
    assert not bool(ck.unavoidable(feasible, 10, EGO, SIZE, SIZE, dyn, DT))
    # the logged ego (not braking) does hit the feasible cut-in: it is a real threat, not a miss
    boxes = lambda tr: jnp.concatenate([tr[:, :3], jnp.broadcast_to(SIZE, (T, 2))], -1)  # noqa: E731
    from jaxsim.geometry import box_overlap

    assert bool(jnp.any(box_overlap(boxes(EGO), boxes(feasible))))
    assert not bool(ck.unavoidable(impossible, -1, EGO, SIZE, SIZE, dyn, DT))  # never triggered


def _plan_status(lead_x: float, trigger_gap: float, keep: bool) -> int:
    """Status of a hard-brake plan on a straight road: the ego at 15 m/s closes on a lead
    in its lane at 8 m/s, `lead_x` m ahead; the lead brakes at 8 m/s^2 once the gap is
    within `trigger_gap` m."""
    import dataclasses

    from builders import bank_of, straight_road

    from jaxsim.env import DrivingEnv, EnvConfig

    bank = bank_of(straight_road(T=61, speed=V, agents=[(lead_x, 0.0, 0.0, 8.0)]))
    env = DrivingEnv(EnvConfig(obs="none"))
    knobs = daa.Knobs(trigger_gap=trigger_gap, trigger_ttc=0.05, decel=8.0, speed_offset=0.0)
    cfg = dataclasses.replace(daa.DAAConfig(budget=1), keep_unavoidable=keep)
    params = env.default_params(bank).replace(daa=daa.params_for(daa.Behaviour.HARD_BRAKE, knobs, cfg))
    return int(env.reset_to_state(jax.random.PRNGKey(0), params, 0).adv.status)


def test_plan_rejects_an_unavoidable_hard_brake_unless_kept():
    # a 3 m gap closing at 7 m/s: the gap closes by 7^2 / (2 * 8) = 3.1 m before even a
    # full-braking ego matches the lead's speed (and the lead brakes as well)
    assert _plan_status(8.0, 3.0, keep=False) == ck.Reason.UNAVOIDABLE
    assert _plan_status(8.0, 3.0, keep=True) == ck.Reason.OK
    # the same lead braking at a 15 m gap: a braking ego stops in time (14 m vs 15 + 4 m)
    assert _plan_status(30.0, 15.0, keep=False) == ck.Reason.OK
    shares = daa.reason_shares(np.array([ck.Reason.UNAVOIDABLE, ck.Reason.OK]))
    assert shares["unavoidable"] == 0.5
