"""The nuScenes importer on a synthetic dataset in the exact table format
(tests/nuscenes_fixture.py): arcline centrelines against the devkit's reference values,
the bank's format, ego and agent interpolation against the fixture's analytic poses, the
SDF, the lane graph, exact expert replay, a closed-loop expert episode, errors that
name the missing table or file, and `reconrl scenarios import-nuscenes`."""

from __future__ import annotations

import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import nuscenes_fixture as fx
import pytest

from agents.cli import main
from agents.evaluation import policy_episodes
from jaxsim import geometry, kinematics
from jaxsim.bank_io import load_bank
from jaxsim.config_utils import ConfigError
from jaxsim.drivers import scripted_policy
from jaxsim.env import DrivingEnv, EnvConfig
from jaxsim.procedural import generate_arrays
from jaxsim.scenario import AgentType, Layout, Source, from_numpy, validate_arrays
from jaxsim.sources.nuscenes import ImportConfig, import_arrays
from jaxsim.sources.nuscenes.arcline import path_length, poses_at, segment_signs
from jaxsim.sources.nuscenes.ego import bicycle_ego
from jaxsim.sources.nuscenes.lanes import project
from jaxsim.sources.nuscenes.maps import map_path, parse_map

DT = 0.1


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return fx.build(str(tmp_path_factory.mktemp("nuscenes")))


@pytest.fixture(scope="module")
def imported(dataset):
    return import_arrays(dataset.dataroot, dataset.version)


def _clip_times(summary, n):
    return (summary["clips"][n]["start_step"] + np.arange(81)) * DT


# --- arcline_path_3: three records of the real boston-seaport map, with the poses the
# devkit's own tests (map_expansion/tests/test_arcline_path_utils.py) expect ---
STRAIGHT = {
    "start_pose": [421.2419602954602, 1087.9127960414617, 2.739593514975998],
    "end_pose": [391.7142849867393, 1100.464077182952, 2.7365754617298705],
    "shape": "LSR",
    "radius": 999.999,
    "segment_length": [0.23651121617864976, 28.593481378991886, 3.254561444252876],
}
LEFT = {
    "start_pose": [391.7142849867393, 1100.464077182952, 2.7365754617298705],
    "end_pose": [372.7733659833846, 1093.0160135871615, -2.000208580915862],
    "shape": "LSL",
    "radius": 14.473414516079979,
    "segment_length": [22.380622583127813, 0.18854612175175053, 0.0010839266609007578],
}
RIGHT = {
    "start_pose": [367.53376358458553, 1097.5300417399676, 1.1738120532326812],
    "end_pose": [392.24904359636037, 1112.5206834496375, -0.4033046016493182],
    "shape": "RSR",
    "radius": 16.890467008945414,
    "segment_length": [4.423187697943063e-05, 6.490596454713637, 26.63819259666578],
}


def test_arcline_matches_devkit_reference():
    for path in (STRAIGHT, LEFT, RIGHT):
        ends = poses_at(path, np.array([0.0, path_length(path)]))
        np.testing.assert_allclose(ends, [path["start_pose"], path["end_pose"]], atol=1e-6)
    # devkit discretize(LEFT, 2): 13 poses evenly spaced along the path
    got = poses_at(LEFT, np.linspace(0.0, path_length(LEFT), 13))[[1, 2, 4, 8]]
    want = [
        (389.94237388555354, 1101.0909492468568, 2.8665278225823894),
        (388.10416900705434, 1101.4829190922167, 2.996480183434908),
        (384.3534700650694, 1101.539784454639, -3.026800402039642),
        (377.4305971846951, 1098.8171802734153, -2.506990958629568),
    ]
    np.testing.assert_allclose(got, want, atol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        segment_signs("LXR")


def test_lane_centrelines_without_arclines_use_the_dividers(dataset):
    path = map_path(dataset.dataroot, "boston-seaport")
    with open(path) as fh:
        obj = json.load(fh)
    with_arcs = parse_map(obj, "boston-seaport", path)
    obj["arcline_path_3"] = {}
    without = parse_map(obj, "boston-seaport", path)
    assert len(with_arcs.lanes) == len(without.lanes) == 4 and without.skipped_lanes == 0
    for a, b in zip(with_arcs.lanes, without.lanes):
        assert a["token"] == b["token"] and a["outgoing"] == b["outgoing"]
        # the fixture's arclines turn 0.25 mrad before their straight part: 5 cm over 200 m
        dist, _, _, _ = project(b["pose"][:, :2], a["pose"][:, :2])
        assert dist.max() < 0.06
        np.testing.assert_allclose(b["pose"][[0, -1], :2], a["pose"][[0, -1], :2], atol=0.06)
        np.testing.assert_allclose(b["pose"][:, 2], fx.ROAD_YAW, atol=1e-6)
        assert a["width"] == pytest.approx(fx.LANE_W, abs=1e-6)


def test_bank_format_and_stacks_with_procedural(imported):
    arrays, summary = imported
    sizes = validate_arrays(arrays, batched=True)
    assert summary["num_clips"] == 3 and arrays["ego_traj"].shape[0] == 3  # 19.5 s scene, stride 4 s
    proc = generate_arrays(1, "train", 0)
    assert validate_arrays(proc, batched=True) == sizes  # same T, A, L, P, S, H, W
    both = from_numpy({k: np.concatenate([proc[k], arrays[k]]) for k in arrays}, batched=True)
    assert both.num_scenarios == 4
    assert (arrays["source"] == Source.NUSCENES).all() and (arrays["layout"] == Layout.UNKNOWN).all()
    np.testing.assert_array_equal(arrays["scenario_id"], [0, 1, 2])
    assert [c["start_step"] for c in summary["clips"]] == [0, 40, 80]
    np.testing.assert_allclose(arrays["dt"], DT)
    np.testing.assert_allclose(arrays["ego_size"], [[4.084, 1.730]] * 3, rtol=1e-6)


def test_ego_matches_the_logged_poses(imported):
    arrays, summary = imported
    for n in range(3):
        t = _clip_times(summary, n)
        truth = fx.ego_center_pose(t)
        ego, origin = arrays["ego_traj"][n], arrays["origin"][n].astype(np.float64)
        np.testing.assert_allclose(origin, truth[0, :2], atol=1e-3)  # the clip starts at the origin
        np.testing.assert_allclose(ego[0, :2], 0.0, atol=1e-6)
        err = np.hypot(*(ego[:, :2] + origin - truth[:, :2]).T)
        assert err.max() < 0.01, err.max()
        dyaw = np.abs(geometry.wrap_angle(ego[:, 2] - truth[:, 2]))
        assert dyaw.max() < np.deg2rad(2.0)  # heading of motion vs body yaw (slip of the box centre)
        step = np.hypot(*np.diff(fx.ego_center_pose(np.append(t, t[-1] + DT))[:, :2], axis=0).T) / DT
        np.testing.assert_allclose(ego[:, 3], step, atol=5e-3)
    assert summary["drift_max_m"] < 1e-3 and summary["clipped_steps"] == 0


def test_expert_replays_through_the_bicycle_model(imported):
    arrays, _ = imported
    p = kinematics.DynamicsParams()
    traj = jnp.asarray(arrays["ego_traj"])
    ctrl = jax.vmap(lambda e: kinematics.expert_controls(e, DT, p))(traj)
    roll = np.asarray(jax.vmap(lambda s, c: kinematics.rollout(s, c, DT, p))(traj[:, 0], ctrl))
    ctrl = np.asarray(ctrl)
    assert ctrl[..., 0].min() >= -p.max_decel and ctrl[..., 0].max() <= p.max_accel
    assert np.abs(ctrl[..., 1]).max() <= p.max_steer
    err = np.hypot(*(roll[..., :2] - arrays["ego_traj"][:, 1:, :2]).transpose(2, 0, 1))
    assert err.max() < 1e-3
    np.testing.assert_allclose(roll[..., 2:], arrays["ego_traj"][:, 1:, 2:], atol=1e-4)


def test_noisy_stop_and_go_log_replays_without_drifting():
    # brake to a stop on a 30 m radius curve, wait, pull away; 2 cm / 7 mrad pose noise
    t = np.arange(82) * DT
    v = np.where(t < 3, 8 - 8 / 3 * t, np.where(t < 5.5, 0.0, 2 * (t - 5.5)))
    s = np.concatenate([[0.0], np.cumsum(0.5 * (v[1:] + v[:-1]) * DT)])
    xy = 30.0 * np.stack([np.sin(s / 30.0), 1 - np.cos(s / 30.0)], -1)
    rng = np.random.default_rng(0)
    pose = np.concatenate([xy + rng.normal(0, 0.02, xy.shape), (s / 30.0 + rng.normal(0, 0.007, 82))[:, None]], -1)
    traj, stats = bicycle_ego(pose, DT)
    drift = np.hypot(*(traj[:, :2] - pose[:-1, :2]).T)
    # bounded by the noise (an open-loop replay of the same log drifts by metres): after a
    # clipped step the next one aims at the log again
    assert stats["drift_max"] == pytest.approx(drift.max()) and drift.max() < 0.15
    assert (drift[:4] < 1e-5).all()  # unclipped steps land on the log
    assert np.hypot(*(traj[:, :2] - xy[:-1]).T).max() < 0.15
    stopped = (t[:-1] > 3.3) & (t[:-1] < 5.4)
    assert np.ptp(traj[stopped, 2]) < 1e-6 and traj[stopped, 3].max() < 0.3  # no turning in place
    p = kinematics.DynamicsParams()
    ctrl = kinematics.expert_controls(jnp.asarray(traj), DT, p)
    roll = np.asarray(kinematics.rollout(jnp.asarray(traj[0]), ctrl, DT, p))
    assert np.hypot(*(roll[:, :2] - traj[1:, :2]).T).max() < 1e-3


def _slot(arrays, n, name, t):
    """Slot of agent `name` in clip n (nearest to its analytic path) and its local truth."""
    truth = fx.agent_pose(name, t)
    truth[:, :2] -= arrays["origin"][n]
    traj, valid = arrays["agent_traj"][n], arrays["agent_valid"][n]
    err = np.where(valid, np.hypot(*(traj[..., :2] - truth[:, None, :2]).transpose(2, 0, 1)), np.nan)
    slot = int(np.nanargmin(np.nanmean(np.where(valid.any(0), err, np.inf), axis=0)))
    return slot, truth, err[:, slot]


def test_agents_match_annotations(dataset, imported):
    arrays, summary = imported
    t_kf = dataset.keyframe_times
    speeds = {a[0]: np.hypot(a[2][2], a[2][3]) for a in fx.AGENTS}
    kinds = {
        "car_a": AgentType.VEHICLE,
        "car_b": AgentType.VEHICLE,
        "ped": AgentType.PEDESTRIAN,
        "bike": AgentType.CYCLIST,
    }
    for n in range(3):
        t = _clip_times(summary, n)
        assert arrays["agent_valid"][n].any(0).sum() == 4  # cone: not an agent; parked car: static box
        for name, kind in kinds.items():
            slot, truth, err = _slot(arrays, n, name, t)
            valid = arrays["agent_valid"][n][:, slot]
            assert arrays["agent_type"][n, slot] == kind
            assert np.nanmax(err) < 2e-3, (name, np.nanmax(err))  # linear motion: interpolation is exact
            np.testing.assert_allclose(arrays["agent_traj"][n][valid, slot, 2], fx.ROAD_YAW, atol=1e-5)
            np.testing.assert_allclose(arrays["agent_traj"][n][valid, slot, 3], speeds[name], atol=1e-3)
            size = {a[0]: a[3] for a in fx.AGENTS}[name]
            np.testing.assert_allclose(arrays["agent_size"][n, slot], [size[1], size[0]], rtol=1e-6)  # [l, w]
            # valid exactly between annotations at most max_gap apart: car B is occluded for 2 s
            a, b = fx.OCCLUDED_B
            gap = (t > t_kf[a - 1] + 1e-6) & (t < t_kf[b] - 1e-6) if name == "car_b" else np.zeros_like(t, bool)
            np.testing.assert_array_equal(valid, ~gap)
            if name == "car_b" and n > 0:
                assert gap.sum() > 10  # clips 1 and 2 hold the occlusion
        # padding slots are empty
        used = arrays["agent_valid"][n].any(0)
        assert (arrays["agent_type"][n][~used] == AgentType.PAD).all()
        # the parked car is a static box with its size and pose
        assert arrays["static_valid"][n].sum() == 1
        box = arrays["static_boxes"][n][0]
        c = fx.agent_pose("car_c", np.zeros(1))[0]
        np.testing.assert_allclose(box, [*(c[:2] - arrays["origin"][n]), fx.ROAD_YAW, 4.5, 1.9], atol=1e-4)


def test_keeps_the_nearest_agents(dataset, imported):
    arrays, summary = imported
    few, _ = import_arrays(dataset.dataroot, dataset.version, ImportConfig(max_agents=2, max_static=0))
    for n in range(3):
        ego = arrays["ego_traj"][n]
        valid = arrays["agent_valid"][n]
        dist = np.where(
            valid, np.hypot(*(arrays["agent_traj"][n][..., :2] - ego[:, None, :2]).transpose(2, 0, 1)), np.inf
        ).min(0)
        assert (np.diff(dist[valid.any(0)]) >= 0).all()  # slots ordered by closest approach
        # with A = 2 and no static slots the parked car competes too: the 2 nearest of all remain
        d_few = np.where(
            few["agent_valid"][n],
            np.hypot(*(few["agent_traj"][n][..., :2] - ego[:, None, :2]).transpose(2, 0, 1)),
            np.inf,
        ).min(0)
        box = arrays["static_boxes"][n][0]
        d_parked = np.hypot(*(ego[:, :2] - box[:2]).T).min()
        np.testing.assert_allclose(d_few, np.sort(np.append(dist[valid.any(0)], d_parked))[:2], atol=1e-5)


@jax.jit
def _lookup(sdf, origin, res, pts):
    return geometry.sdf_lookup(sdf, origin, res, pts)


def test_sdf_negative_on_the_road_positive_off_it(imported):
    arrays, summary = imported
    for n in range(3):
        o = arrays["origin"][n].astype(np.float64)
        s = fx.ego_sd(_clip_times(summary, n)[0])[0] + np.linspace(-20.0, 60.0, 21)  # around the clip
        on_road = np.concatenate([fx.to_world(s, np.full_like(s, d)) for d in (-1.0, 0.0, 3.5, 5.0)]) - o
        off_road = np.concatenate([fx.to_world(s, np.full_like(s, d)) for d in (-5.0, 16.0)]) - o
        shoulder = fx.to_world([20.0], [-6.75]) - o
        island = fx.to_world([65.0], [9.25]) - o
        ego = arrays["ego_traj"][n]
        boxes = np.concatenate([ego[:, :3], np.broadcast_to(arrays["ego_size"][n], (81, 2))], -1)
        corners = np.asarray(geometry.box_corners(jnp.asarray(boxes))).reshape(-1, 2)
        pts = np.concatenate([on_road, off_road, shoulder, island, corners]).astype(np.float32)
        d = np.asarray(_lookup(arrays["sdf"][n], arrays["sdf_origin"][n], arrays["sdf_res"][n], pts))
        d_on, d_off, d = d[:84], d[84:126], d[126:]
        assert d_on.max() < -0.5
        assert d_off.min() > 1.5
        # 4 m beyond the shoulder (d = -2.75); a raster SDF of a slanted edge is good to ~res / 2
        assert d[0] == pytest.approx(4.0, abs=0.5)
        # the traffic island (3.5 m wide) is a hole in the drivable polygon; 1.75 m at its
        # centre, less the 3x3 smoothing of mask_to_sdf on so narrow a ridge
        assert d[1] > 0.7
        assert d[2:].max() < 0.0  # the expert's box stays on the road


def test_lane_graph(imported):
    arrays, _ = imported
    for n in range(3):
        num, left, right, succ = (arrays[k][n] for k in ("lane_num_points", "lane_left", "lane_right", "lane_succ"))
        used = num > 0
        assert used.sum() >= 2
        for i in np.flatnonzero(used):
            if left[i] >= 0:
                assert right[left[i]] == i
            if right[i] >= 0:
                assert left[right[i]] == i
            pts = arrays["lane_points"][n, i, : num[i]]
            yaw = np.arctan2(*np.diff(pts, axis=0)[:, ::-1].T)
            np.testing.assert_allclose(geometry.wrap_angle(yaw - fx.ROAD_YAW), 0.0, atol=1e-3)
        np.testing.assert_allclose(arrays["lane_width"][n][used], fx.LANE_W, atol=1e-3)
        # two lanes side by side wherever the road is in the window: every lane has one neighbour
        assert ((left[used] >= 0) ^ (right[used] >= 0)).all()
        ego_lane = arrays["ego_lane"][n]
        assert (ego_lane >= 0).all()
        # lane 1 -> lane 2 through `connectivity` when both are in the window
        if used.sum() == 4:
            assert (succ[used][:, 0] >= 0).sum() == 2
    # clip 1 (4-12 s, s < 140 m: first lane segments) holds the lane change: the right
    # lane, then its left neighbour
    lanes = arrays["ego_lane"][1]
    assert arrays["lane_left"][1][lanes[0]] == lanes[-1] and len(np.unique(lanes)) == 2
    d = np.asarray(geometry.to_local(jnp.asarray(arrays["ego_traj"][1, :, :2]), jnp.asarray([0.0, 0.0, fx.ROAD_YAW])))[
        :, 1
    ]
    first_left = np.flatnonzero(lanes != lanes[0])[0]
    assert 1.2 < d[first_left] - d[0] < 2.3  # switches lane halfway across


def test_env_runs_the_expert_without_collisions(imported):
    arrays, _ = imported
    bank = from_numpy(arrays, batched=True)
    env = DrivingEnv(EnvConfig(action_space="continuous", obs="vector"))
    params = env.default_params(bank)
    episodes = policy_episodes(env, params, scripted_policy("expert", env), np.arange(3), jax.random.PRNGKey(0))
    for key in ("dynamic_collision", "static_collision", "position_deviation", "heading_deviation"):
        np.testing.assert_array_equal(episodes[key], 0.0, err_msg=key)
    np.testing.assert_allclose(episodes["route_completion"], 1.0, atol=1e-3)
    np.testing.assert_allclose(episodes["add"], 0.0, atol=1e-3)


def _copy(dataset, tmp_path):
    root = str(tmp_path / "copy")
    shutil.copytree(dataset.dataroot, root)
    return root


def test_missing_or_broken_inputs_are_named(dataset, tmp_path):
    root = _copy(dataset, tmp_path)
    tables = os.path.join(root, dataset.version)
    with pytest.raises(FileNotFoundError, match="version folder not found.*v1.0-trainval"):
        import_arrays(root, "v1.0-trainval")
    os.remove(os.path.join(root, "maps", "expansion", "boston-seaport.json"))
    with pytest.raises(FileNotFoundError, match="boston-seaport.json"):
        import_arrays(root, dataset.version)
    with open(os.path.join(tables, "instance.json")) as fh:
        inst = json.load(fh)
    del inst[0]["category_token"]
    with open(os.path.join(tables, "instance.json"), "w") as fh:
        json.dump(inst, fh)
    with pytest.raises(ValueError, match="'instance'.*category_token"):
        import_arrays(root, dataset.version)
    os.remove(os.path.join(tables, "sample_annotation.json"))
    with pytest.raises(FileNotFoundError, match="'sample_annotation' missing"):
        import_arrays(root, dataset.version)
    with pytest.raises(ConfigError, match="clip_stride"):
        ImportConfig(clip_stride=0)


def test_short_scene_and_devkit_flag(tmp_path):
    short = fx.build(str(tmp_path / "short"), num_keyframes=12)  # 5.5 s < one 8 s clip
    with pytest.raises(ValueError, match="no clip of 81 steps.*scene-0061"):
        import_arrays(short.dataroot, short.version)
    from jaxsim.sources.nuscenes.devkit import devkit_available

    if not devkit_available():
        with pytest.raises(ValueError, match="nuscenes-devkit"):
            import_arrays(short.dataroot, short.version, use_devkit=True)


def test_devkit_path_matches_the_json_reader(dataset, imported):
    """Only where nuscenes-devkit is importable (a numpy-1 environment): the devkit loads
    the fixture, and reading through it gives the same bank."""
    pytest.importorskip("nuscenes.nuscenes")
    from nuscenes.map_expansion.arcline_path_utils import discretize_lane

    arrays, _ = imported
    via_devkit, _ = import_arrays(dataset.dataroot, dataset.version, use_devkit=True)
    for k in arrays:
        np.testing.assert_array_equal(via_devkit[k], arrays[k], err_msg=k)
    for path in (STRAIGHT, LEFT, RIGHT):
        ref = np.asarray(discretize_lane([path], 1.0))
        dist, _, _, _ = project(ref[:, :2], poses_at(path, np.linspace(0, path_length(path), 200))[:, :2])
        assert dist.max() < 1e-3


def test_cli_import_and_show(dataset, tmp_path, capsys):
    out, js, png = tmp_path / "nusc.npz", tmp_path / "nusc.json", tmp_path / "clip.png"
    rc = main(
        [
            "scenarios",
            "import-nuscenes",
            "--dataroot",
            dataset.dataroot,
            "--version",
            dataset.version,
            "--out",
            str(out),
            "--clip-stride",
            "60",
            "--json",
            str(js),
        ]
    )
    assert rc == 0
    bank = load_bank(out)
    assert bank.num_scenarios == 2  # starts at 0 and 6 s
    summary = json.loads(js.read_text())
    assert summary["num_clips"] == 2 and [c["start_step"] for c in summary["clips"]] == [0, 60]
    assert "imported 2 clips" in capsys.readouterr().out
    assert main(["scenarios", "show", "--bank", str(out), "--index", "1", "--out", str(png), "--size", "64"]) == 0
    assert png.exists()
    rc = main(["scenarios", "import-nuscenes", "--dataroot", str(tmp_path / "missing"), "--out", str(out)])
    assert rc == 2 and "dataroot not found" in capsys.readouterr().err
    rc = main(["scenarios", "import-nuscenes", "--dataroot", dataset.dataroot, "--scenes", "0", "--out", str(out)])
    assert rc == 2 and "--scenes" in capsys.readouterr().err
