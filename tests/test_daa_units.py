"""DAA pieces without the env: prompts, config validation, sampling, trajectory check
reason codes, target selection and metrics per behaviour."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsim import daa
from jaxsim import metrics as met
from jaxsim.config_utils import ConfigError
from jaxsim.daa import check as ck
from jaxsim.daa import prompt as pr
from jaxsim.daa import select as sel
from jaxsim.daa.scenes import corner_case_bank
from jaxsim.kinematics import DynamicsParams

B = daa.Behaviour


@pytest.mark.parametrize(
    "text, behaviour, intensity",
    [
        ("A vehicle on the right cuts in front of the ego vehicle, while other vehicles maintain their original trajectories",
         B.CUT_IN_RIGHT, "moderate"),
        ("a car on the LEFT cuts-in aggressively", B.CUT_IN_LEFT, "aggressive"),
        ("The lead vehicle brakes hard", B.HARD_BRAKE, "aggressive"),
        ("the vehicle ahead decelerates gently", B.HARD_BRAKE, "mild"),
        ("a vehicle suddenly changes lanes into the ego lane", B.LANE_CHANGE, "aggressive"),
        ("a truck merges from the on-ramp", B.MERGE, "moderate"),
        ("all vehicles maintain their original trajectories", B.KEEP_LOG, "moderate"),
    ],
)  # fmt: skip
def test_prompts_map_to_behaviours(text, behaviour, intensity):
    assert pr.parse_prompt(text) == (behaviour, intensity)
    p = daa.from_prompt(text)
    assert int(p.behaviour) == behaviour and p.enabled
    fam = daa.DAAConfig().family(int(behaviour))
    for k in daa.KNOB_NAMES:  # knobs inside the family's ranges
        lo, hi = getattr(fam, k)
        assert lo - 1e-6 <= float(getattr(p.knobs, k)) <= hi + 1e-6


def test_intensity_orders_danger():
    mild, aggr = pr.knobs_for(B.CUT_IN_LEFT, "mild"), pr.knobs_for(B.CUT_IN_LEFT, "aggressive")
    assert aggr.final_gap < mild.final_gap and aggr.lat_duration < mild.lat_duration
    assert pr.knobs_for(B.HARD_BRAKE, "aggressive").decel > pr.knobs_for(B.HARD_BRAKE, "mild").decel


@pytest.mark.parametrize("text, needle", [("a unicorn flies over the road", "names no behaviour"),
                                          ("a vehicle cuts in", "needs exactly one side"),
                                          ("a car cuts in on the left and then brakes", "several behaviours"), ("", "empty")])  # fmt: skip
def test_bad_prompts_list_the_grammar(text, needle):
    with pytest.raises(daa.PromptError) as err:
        daa.from_prompt(text)
    msg = str(err.value)
    assert needle in msg and "cut_in" in msg and "hard_brake" in msg and "aggressive" in msg


def test_config_validation_names_the_field():
    with pytest.raises(ConfigError, match="fallback"):
        daa.DAAConfig(fallback="teleport")
    with pytest.raises(ConfigError, match="weights"):
        daa.DAAConfig(weights=(1.0, 1.0))
    with pytest.raises(ConfigError, match="decel"):
        daa.KnobRanges(decel=(5.0, 1.0))


def test_sample_params_mixes_behaviours_within_ranges():
    cfg = daa.DAAConfig()
    p = daa.sample_params(jax.random.PRNGKey(0), 2000, cfg)
    beh = np.asarray(p.behaviour)
    assert set(np.unique(beh)) == {1, 2, 3, 4, 5}  # keep_log has weight 0
    lo, hi = cfg.range_table()
    vals = np.asarray(p.knobs.as_array())
    assert np.all(vals >= np.asarray(lo)[beh] - 1e-6) and np.all(vals <= np.asarray(hi)[beh] + 1e-6)


def _straight(T=40, v=10.0, y=0.0, yaw_jump=None, accel_jump=None):
    t = np.arange(T) * 0.1
    traj = np.stack([v * t, np.full(T, y), np.zeros(T), np.full(T, v)], -1).astype(np.float32)
    if yaw_jump is not None:
        traj[yaw_jump:, 2] += 0.3
    if accel_jump is not None:
        traj[accel_jump:, 3] += 2.0
    return jnp.asarray(traj)


def test_check_reason_codes():
    bank = corner_case_bank(1, seed=0, T=40)
    dyn = DynamicsParams()
    far_ego = _straight(y=0.0) - jnp.array([60.0, 0.0, 0.0, 0.0])
    size = jnp.array([4.5, 1.9])

    def reason(traj, ego=far_ego, t_trig=5):
        r = ck.check_trajectory(traj, 0, t_trig, ego, bank.ego_size[0], size, bank.sdf, 0, bank.sdf_origin[0],
                                bank.sdf_res[0], dyn, 0.1)  # fmt: skip
        return ck.Reason(int(r))

    assert reason(_straight(y=3.5)) == ck.Reason.OK
    assert reason(_straight(y=3.5, yaw_jump=10)) == ck.Reason.CURVATURE
    assert reason(_straight(y=3.5, accel_jump=10)) == ck.Reason.ACCELERATION
    assert reason(_straight(y=8.0)) == ck.Reason.OFFROAD
    assert reason(_straight(y=1.0), ego=_straight(y=0.0)) == ck.Reason.OVERLAP
    assert reason(_straight(y=3.5), t_trig=-1) == ck.Reason.NO_TRIGGER
    shares = ck.reason_shares(np.array([0, 0, 4, 7]))
    assert shares["ok"] == 0.5 and shares["offroad"] == 0.25 and abs(sum(shares.values()) - 1) < 1e-9


def test_selection_picks_by_geometry():
    # ego at x=0 in lane 1 (y=0); lead at 20 m, left neighbour 3 m behind, right one 12 m ahead
    bank = corner_case_bank(
        0, fixed=[dict(ego_speed=10.0, agents=[(1, 20.0, 10.0), (0, -3.0, 10.0), (2, 12.0, 9.0)])], T=20
    )
    args = (bank.ego_traj[0, 0], bank.ego_size[0], bank.lane_points[0, 1], bank.lane_num_points[0, 1], 3.5,
            jnp.bool_(True), jnp.bool_(True), bank.agent_traj[0, 0], bank.agent_valid[0, 0], bank.agent_size[0],
            bank.agent_type[0])  # fmt: skip
    pick = {
        b: int(sel.select_target(b, *args)[0])
        for b in (B.CUT_IN_LEFT, B.CUT_IN_RIGHT, B.HARD_BRAKE, B.LANE_CHANGE, B.MERGE)
    }
    assert pick == {B.CUT_IN_LEFT: 0 + 1, B.CUT_IN_RIGHT: 2, B.HARD_BRAKE: 0, B.LANE_CHANGE: 2, B.MERGE: 2}
    no_left = args[:5] + (jnp.bool_(False),) + args[6:]
    assert int(sel.select_target(B.CUT_IN_LEFT, *no_left)[0]) == -1


def test_plain_fallback_is_recorded_and_spawn_fills_a_free_slot():
    bank = corner_case_bank(0, fixed=[dict(ego_speed=10.0, agents=[])], T=41)
    dyn = DynamicsParams()
    route, n = bank.ego_traj[0], jnp.int32(41)
    plain = daa.params_for(B.CUT_IN_LEFT, daa.Knobs(), daa.DAAConfig(fallback="plain"))
    adv = ck.plan(jax.random.PRNGKey(0), plain, bank, 0, route, n, dyn)
    assert int(adv.slot) == -1 and int(adv.behaviour) == B.KEEP_LOG and int(adv.status) == ck.Reason.NO_TARGET
    spawn = daa.params_for(B.CUT_IN_LEFT, daa.Knobs(), daa.DAAConfig(fallback="spawn"))
    adv = ck.plan(jax.random.PRNGKey(0), spawn, bank, 0, route, n, dyn)
    assert int(adv.slot) == 0 and bool(adv.spawned) and int(adv.status) == ck.Reason.OK
    assert float(adv.pose[1]) == pytest.approx(3.5, abs=1e-4)  # one lane to the left


def test_metrics_by_behaviour():
    ep = {k: np.zeros(6, np.float32) for k in ("dynamic_collision", "static_collision", "position_deviation",
                                                "heading_deviation", "add", "long_jerk", "lat_jerk", "route_completion")}  # fmt: skip
    ep["dynamic_collision"][:] = [1, 0, 1, 1, 0, 0]
    ids = np.array([1, 1, 3, 3, 3, 0])
    rows = daa.metrics_by_behaviour(ep, ids)
    assert list(rows) == ["overall", "keep_log", "cut_in_left", "hard_brake"]
    assert rows["overall"]["CR"] == pytest.approx(0.5) and rows["cut_in_left"]["DCR"] == pytest.approx(0.5)
    assert rows["hard_brake"]["CR"] == pytest.approx(2 / 3) and rows["hard_brake"]["Episodes"] == 3
    assert set(rows["overall"]) == set(met.TABLE_COLUMNS)
    with pytest.raises(ValueError, match="unknown behaviour"):
        daa.metrics_by_behaviour(ep, np.array([1, 1, 3, 3, 3, 9]))
