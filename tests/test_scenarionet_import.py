"""ScenarioNet scenario descriptions -> ScenarioBank (jaxsim.sources.scenarionet).

A synthetic scene in ScenarioNet's format, written by the tests (a two-lane road with
lane polygons and `exit_lanes`, an ego that stops and goes, agents of every type and a
cone), pickles that reference other globals (refused before anything runs), schema
errors (skipped with the file and key named, the rest imported), the CLI, and - when
`../shared/data/nuscenes_mini_scenarionet` exists (CI has it) - the six real nuScenes
scenes: import, expert log replay clean on every clip (CR = SCR = 0), lane graph,
determinism. The real files are read in place, never copied.
"""

from __future__ import annotations

import collections
import json
import os
import pickle

import jax
import numpy as np
import pytest

from agents.cli import main
from agents.evaluation import policy_episodes
from jaxsim import metrics
from jaxsim.bank_io import load_bank
from jaxsim.drivers import scripted_policy
from jaxsim.env import DrivingEnv, EnvConfig
from jaxsim.scenario import AgentType, Source, from_numpy
from jaxsim.sources.scenarionet import ScenarioNetFormatError, UnsafePickleError, import_arrays, safe_load, safe_loads
from jaxsim.sources.scenarionet.schema import validate

REAL = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "nuscenes_mini_scenarionet")
STEPS, DT, SPEED = 130, 0.1, 8.0


# --- synthetic scene ---------------------------------------------------------------
def _track(kind, xy, yaw, speed, valid, size):
    T = len(xy)
    vel = speed[:, None] * np.stack([np.cos(yaw), np.sin(yaw)], -1)
    return {
        "type": kind,
        "metadata": {"type": kind.lower()},
        "state": {
            "position": np.concatenate([xy, np.zeros((T, 1))], -1),
            "heading": yaw,
            "velocity": vel,
            "valid": valid.astype(float),
            "length": np.full((T, 1), size[0]),
            "width": np.full((T, 1), size[1]),
            "height": np.full((T, 1), 1.5),
        },
    }


def _lane(y, x0, x1, exits, left=(), right=()):
    x = np.arange(x0, x1 + 1e-9, 1.0)
    line = np.stack([x, np.full_like(x, y), np.zeros_like(x)], -1)
    poly = np.array([[x0, y - 1.75], [x1, y - 1.75], [x1, y + 1.75], [x0, y + 1.75]])
    return {
        "type": "LANE_SURFACE_STREET",
        "polyline": line,
        "polygon": poly,
        "exit_lanes": exits,
        "entry_lanes": [],
        "left_neighbor": list(left),
        "right_neighbor": list(right),
    }


def scene(name="synthetic-0", steps=STEPS, gap=3.5, neighbours=False) -> dict:
    """Ego along lane y=0 (x from 100), slowing smoothly to a stop at t = 4 s, then going again."""
    t = np.arange(steps) * DT
    speed = 0.5 * SPEED * (1 + np.cos(2 * np.pi * t / 8.0))
    x = 100.0 + np.concatenate([[0.0], np.cumsum(speed[:-1] * DT)])
    rng = np.random.default_rng(0)
    ego_yaw = np.where(speed < 0.5, rng.normal(0, 0.05, steps), 0.0)  # standstill yaw noise
    ones = np.ones(steps, bool)
    tracks = collections.defaultdict(dict)  # ScenarioNet files hold defaultdicts too
    tracks["ego"] = _track("VEHICLE", np.stack([x, np.zeros(steps)], -1), ego_yaw, speed, ones, (4.5, 1.9))
    lead = 100.0 + 30.0 + SPEED * t  # a car ahead in the left lane, always moving
    tracks["car"] = _track(
        "VEHICLE", np.stack([lead, np.full(steps, 3.5)], -1), np.zeros(steps), np.full(steps, SPEED), ones, (4.6, 1.9)
    )
    tracks["parked"] = _track(
        "VEHICLE",
        np.stack([np.full(steps, 150.0), np.full(steps, -4.0)], -1),
        np.zeros(steps),
        np.zeros(steps),
        ones,
        (4.2, 1.8),
    )
    ped_valid = t < 8
    tracks["ped"] = _track(
        "PEDESTRIAN",
        np.stack([np.full(steps, 140.0), -6 + t], -1),
        np.full(steps, np.pi / 2),
        np.ones(steps),
        ped_valid,
        (0.6, 0.6),
    )
    tracks["bike"] = _track(
        "CYCLIST",
        np.stack([60.0 + 5 * t, np.full(steps, 3.5)], -1),
        np.zeros(steps),
        np.full(steps, 5.0),
        ones,
        (1.8, 0.7),
    )
    tracks["cone"] = _track(
        "TRAFFIC_CONE",
        np.stack([np.full(steps, 170.0), np.full(steps, -2.5)], -1),
        np.zeros(steps),
        np.zeros(steps),
        ones,
        (0.4, 0.4),
    )
    # neighbour lists as Waymo conversions store them (dicts) and as nuPlan's (plain ids)
    nb = (lambda *ids: [{"feature_id": i, "self_start_index": 0} for i in ids]) if neighbours else (lambda *ids: [])
    features = {
        "a": _lane(0.0, 50.0, 150.0, ["b"], left=nb("c")),
        "b": _lane(0.0, 150.0, 260.0, [], left=nb("d")),
        "c": _lane(gap, 50.0, 150.0, ["d"], right=nb("a")),
        "d": _lane(gap, 150.0, 260.0, [], right=["b"] if neighbours else []),
        "line": {"type": "ROAD_LINE_BROKEN_SINGLE_WHITE", "polyline": np.array([[50.0, 1.75], [260.0, 1.75]])},
    }
    return {
        "id": name,
        "version": "synthetic",
        "length": steps,
        "metadata": {
            "dataset": "waymo",
            "map": "synthetic",
            "sdc_id": "ego",
            "sample_rate": DT,
            "scenario_id": name,
            "ts": t,
        },
        "tracks": tracks,
        "dynamic_map_states": {},
        "map_features": features,
    }


def _write(folder, name, obj, protocol=4):
    path = os.path.join(folder, name)
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=protocol)
    return path


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("scenarionet"))
    _write(folder, "sd_synthetic_0.pkl", scene())
    return folder


@pytest.fixture(scope="module")
def imported(synthetic):
    return import_arrays([synthetic])


def _expert(arrays):
    bank = from_numpy(arrays, batched=True)
    env = DrivingEnv(EnvConfig(action_space="continuous", obs="vector"))
    ep = policy_episodes(
        env,
        env.default_params(bank),
        scripted_policy("expert", env),
        np.arange(bank.num_scenarios),
        jax.random.PRNGKey(0),
    )
    return metrics.aggregate(ep), ep


def test_synthetic_scene_converts(imported):
    arrays, rep = imported
    assert rep["num_clips"] == 2 and rep["skipped"] == []  # starts 0 and 40 of 130 steps
    assert (arrays["source"] == int(Source.SCENARIONET)).all()
    ego = arrays["ego_traj"][0]
    logged_x = 100.0 + np.concatenate([[0.0], np.cumsum(scene()["tracks"]["ego"]["state"]["velocity"][:80, 0] * DT)])
    np.testing.assert_allclose(ego[:, 0] + arrays["origin"][0, 0], logged_x[:81], atol=0.1)  # waymo: no axle offset
    np.testing.assert_allclose(ego[:, 1], 0.0, atol=0.05)
    slow = ego[:, 3] < 0.5
    assert slow.sum() >= 3 and np.abs(ego[:, 2]).max() < 1e-3  # standstill yaw noise is not followed
    types = arrays["agent_type"][0][arrays["agent_valid"][0].any(0)]
    assert sorted(types.tolist()) == sorted([AgentType.VEHICLE, AgentType.PEDESTRIAN, AgentType.CYCLIST])
    assert arrays["static_valid"][0].sum() == 1  # the parked car; the cone is no agent
    sc = rep["scene_reports"][0]
    assert sc["not_agents"] == {"TRAFFIC_CONE": 1} and sc["parked"] == 1
    assert rep["on_drivable"] == 1.0 and rep["in_lane"] == 1.0


def test_synthetic_lane_graph(imported):
    arrays, _ = imported
    n = arrays["lane_num_points"][0] > 0
    assert n.sum() == 4
    succ, left = arrays["lane_succ"][0], arrays["lane_left"][0]
    assert (succ[n] >= 0).any(axis=1).sum() == 2  # a->b and c->d from exit_lanes
    assert (left[n] >= 0).sum() == 2  # geometric neighbours: y=3.5 is left of y=0
    assert (arrays["ego_lane"][0] >= 0).all()


def test_lane_neighbours_from_the_file(tmp_path):
    """Lanes 6 m apart are no geometric neighbours (offsets up to 4.5 m), but the file says
    they are: the file's lists win when it has any."""
    _write(str(tmp_path), "geo.pkl", scene(gap=6.0))
    geo, rep = import_arrays([str(tmp_path / "geo.pkl")])
    assert (geo["lane_left"][0] < 0).all() and rep["scene_reports"][0]["lane_neighbours"] == "geometry"
    _write(str(tmp_path), "file.pkl", scene(gap=6.0, neighbours=True))
    arrays, rep = import_arrays([str(tmp_path / "file.pkl")])
    assert rep["scene_reports"][0]["lane_neighbours"] == "file"
    left, right, pts = arrays["lane_left"][0], arrays["lane_right"][0], arrays["lane_points"][0]
    n = int((arrays["lane_num_points"][0] > 0).sum())
    for k in range(n):
        y = pts[k, 0, 1] + arrays["origin"][0, 1]
        if abs(y) < 0.1:  # lanes a, b: the y = 6 lane is on their left, and they are on its right
            assert left[k] >= 0 and abs(pts[left[k], 0, 1] + arrays["origin"][0, 1] - 6.0) < 0.1
            assert right[left[k]] == k
        else:
            assert left[k] == -1 and right[k] >= 0


def test_synthetic_expert_replay_is_clean(imported):
    row, ep = _expert(imported[0])
    assert row["CR"] == 0.0 and row["SCR"] == 0.0 and row["DR"] == 0.0
    np.testing.assert_allclose(ep["route_completion"], 1.0, atol=1e-3)


def test_import_is_deterministic(synthetic, imported):
    again, _ = import_arrays([synthetic])
    for k, v in imported[0].items():
        np.testing.assert_array_equal(v, again[k], err_msg=k)


# --- unsafe pickles ------------------------------------------------------------------
# Hand-written protocol-0 opcodes: GLOBAL 'os system', MARK, STRING, TUPLE, REDUCE, STOP.
# Loading these with pickle.load would run `echo pwned`; they are only ever fed to the
# restricted unpickler, which refuses at the GLOBAL opcode.
OS_SYSTEM = b"cos\nsystem\n(S'echo pwned'\ntR."
NESTED = b"(dp0\nS'tracks'\np1\ncbuiltins\neval\n(S'1+1'\ntRs."  # {'tracks': eval('1+1')}
POSIX = b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x8c\x06system\x93\x8c\x02id\x85R."


@pytest.mark.parametrize("data,name", [(OS_SYSTEM, "os.system"), (NESTED, "builtins.eval"), (POSIX, "posix.system")])
def test_unsafe_globals_are_refused(data, name, monkeypatch):
    called = []
    monkeypatch.setattr(os, "system", lambda *a: called.append(a))
    with pytest.raises(UnsafePickleError, match=name.replace(".", r"\.")):
        safe_loads(data, "evil.pkl")
    assert called == []


def test_unsafe_file_is_skipped_and_the_rest_imported(tmp_path):
    good = _write(str(tmp_path), "a_good.pkl", scene())
    (tmp_path / "b_evil.pkl").write_bytes(OS_SYSTEM)
    arrays, rep = import_arrays([str(tmp_path)])
    assert rep["num_clips"] == 2 and rep["scene_reports"][0]["file"] == good
    assert len(rep["skipped"]) == 1 and "os.system" in rep["skipped"][0]["reason"]


def test_numpy_pickles_load(tmp_path):
    obj = {"a": np.arange(3.0), "b": np.float32(2.0), "c": collections.defaultdict(list), "d": {1, 2}}
    for proto in (2, 4, 5):
        got = safe_load(_write(str(tmp_path), f"p{proto}.pkl", obj, proto))
        np.testing.assert_array_equal(got["a"], obj["a"])
        assert got["b"] == 2.0 and got["d"] == {1, 2}


# --- schema errors ---------------------------------------------------------------------
def _broken(kind):
    sd = scene()
    ego = sd["tracks"]["ego"]["state"]
    if kind == "no_sdc":
        del sd["metadata"]["sdc_id"]
    elif kind == "sdc_invalid":
        ego["valid"] = np.zeros(STEPS)
    elif kind == "nan":
        ego["position"] = ego["position"].copy()
        ego["position"][5, 0] = np.nan
    elif kind == "lengths":
        sd["tracks"]["car"]["state"]["heading"] = np.zeros(STEPS - 3)
    elif kind == "short":
        sd = scene(steps=60)
    elif kind == "not_dict":
        sd = [1, 2]
    return sd


@pytest.mark.parametrize(
    "kind,needle",
    [
        ("no_sdc", "metadata.sdc_id"),
        ("sdc_invalid", "no valid step"),
        ("nan", "non-finite"),
        ("lengths", "tracks['car'].state.heading"),
        ("short", "shorter than one clip"),
        ("not_dict", "<top level>"),
    ],
)
def test_bad_scenes_are_skipped_with_the_reason(tmp_path, kind, needle):
    _write(str(tmp_path), "a_good.pkl", scene())
    bad = _write(str(tmp_path), "b_bad.pkl", _broken(kind))
    _, rep = import_arrays([str(tmp_path)])
    assert rep["num_clips"] == 2
    (skip,) = rep["skipped"]
    assert skip["file"] == bad and needle in skip["reason"], skip


def test_schema_error_names_file_and_key():
    with pytest.raises(ScenarioNetFormatError, match=r"x\.pkl: metadata\.sdc_id"):
        validate(_broken("no_sdc"), "x.pkl")


def test_nothing_importable_is_an_error(tmp_path):
    _write(str(tmp_path), "short.pkl", _broken("short"))
    with pytest.raises(ValueError, match="shorter than one clip"):
        import_arrays([str(tmp_path)])
    with pytest.raises(FileNotFoundError, match="not found"):
        import_arrays([str(tmp_path / "missing.pkl")])
    with pytest.raises(ValueError, match="spare_slots"):
        import_arrays([str(tmp_path)], spare_slots=-1)


# --- CLI --------------------------------------------------------------------------------
def test_cli_import(synthetic, tmp_path, capsys):
    out, js = tmp_path / "sub" / "bank.npz", tmp_path / "report.json"
    rc = main(["scenarios", "import-scenarionet", synthetic, "--out", str(out), "--json", str(js), "--no-progress"])
    assert rc == 0
    assert load_bank(out).num_scenarios == 2
    rep = json.loads(js.read_text())
    assert rep["num_clips"] == 2 and rep["scene_reports"][0]["scene"] == "synthetic-0"
    text = capsys.readouterr().out
    assert "synthetic-0" in text and "2 clips from 1 of 1 file(s)" in text
    rc = main(["scenarios", "import-scenarionet", str(tmp_path / "nothing.pkl"), "--out", str(out)])
    assert rc == 2 and "not found" in capsys.readouterr().err
    rc = main(["scenarios", "import-scenarionet", synthetic, "--out", str(tmp_path)])
    assert rc == 2 and "directory" in capsys.readouterr().err


# --- the real nuScenes scenes (../shared/data; read in place) ----------------------------
real = pytest.mark.skipif(not os.path.isdir(REAL), reason=f"real ScenarioNet scenes not at {REAL}")


@pytest.fixture(scope="module")
def real_import():
    return import_arrays([REAL])


@real
def test_real_scenes_import(real_import):
    arrays, rep = real_import
    assert rep["files"] == 6 and rep["scenes"] == 6 and rep["skipped"] == []
    assert rep["num_clips"] == 18  # 191-201 steps: clips start at 0, 40, 80
    assert rep["drift_max_m"] < 0.1 and rep["on_drivable"] == 1.0 and rep["in_lane"] > 0.95
    assert all(r["dataset"] == "nuscenes" for r in rep["scene_reports"])
    assert (arrays["agent_valid"].any(1).sum(1) >= 5).all()


@real
def test_real_expert_replay_is_clean_on_every_clip(real_import):
    row, ep = _expert(real_import[0])
    assert row["Episodes"] == 18.0
    np.testing.assert_array_equal(ep["dynamic_collision"], 0.0)
    np.testing.assert_array_equal(ep["static_collision"], 0.0)
    assert row["CR"] == 0.0 and row["SCR"] == 0.0


@real
def test_real_lane_graph_non_empty(real_import):
    arrays = real_import[0]
    lanes = arrays["lane_num_points"] > 0
    assert lanes.sum(1).min() >= 10
    assert ((arrays["lane_succ"] >= 0).any(2) & lanes).sum(1).min() >= 1  # successors in every clip
    assert ((arrays["lane_left"] >= 0) & lanes).sum() > 0


@real
def test_real_clips_leave_slots_for_daa_and_daa_finds_adversaries(real_import):
    from jaxsim import daa
    from jaxsim.wrappers import VmapWrapper, broadcast_params

    arrays, rep = real_import
    assert rep["spare_slots"] == 2
    free = ~arrays["agent_valid"].any(1) & (arrays["agent_type"] == 0)
    assert free.sum(1).min() >= 2  # DAA's spawn fallback needs a free slot
    bank = from_numpy(arrays, batched=True)
    n, reps = bank.num_scenarios, 16
    env = DrivingEnv(EnvConfig(obs="none"))
    key = jax.random.PRNGKey(0)
    params = broadcast_params(env.default_params(bank), n * reps).replace(daa=daa.sample_params(key, n * reps))
    ids = np.tile(np.arange(n, dtype=np.int32), reps)
    adv = jax.jit(VmapWrapper(env, n * reps, batched_params=True).reset_to_state)(key, params, ids).adv
    active = np.asarray(adv.active).reshape(reps, n)
    assert active.mean() > 0.15 and active.any(0).mean() >= 0.5  # measured: 0.26 and 0.83 (32 draws)
    assert daa.reason_shares(adv.status)["no_target"] < 0.05


@real
def test_real_import_is_deterministic(real_import):
    src = sorted(os.listdir(REAL))[3]  # one scene again, on its own (clip arrays must not depend on the others)
    again, rep = import_arrays([os.path.join(REAL, src)])
    first = [k for k, c in enumerate(real_import[1]["clips"]) if c["scene"] == rep["scene_reports"][0]["scene"]]
    for k, v in again.items():
        if k != "scenario_id":
            np.testing.assert_array_equal(v, real_import[0][k][first], err_msg=k)
