"""The procedural scenario source: determinism, layout, lane graph, SDF, traffic, the expert
log (replays through the bicycle model, never collides, stays on the road) and the
`reconrl scenarios` command."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from shapely.geometry import Polygon

from agents.cli import main
from jaxsim import geometry, kinematics
from jaxsim.config_utils import ConfigError
from jaxsim.procedural import GeneratorConfig, generate_arrays, generate_bank, generate_scenario, scenario_seed
from jaxsim.scenario import AgentType, Layout, to_numpy, validate_arrays

NUM = 200  # scenarios in the shared sample: the expert checks run over all of them


@pytest.fixture(scope="module")
def bank() -> dict:
    return generate_arrays(NUM, "train", 0)


@pytest.fixture(scope="module")
def ego_boxes(bank):
    traj = bank["ego_traj"]
    return np.concatenate([traj[..., :3], np.broadcast_to(bank["ego_size"][:, None], traj.shape[:2] + (2,))], -1)


def test_config_validation_names_the_field():
    with pytest.raises(ConfigError, match="num_steps"):
        GeneratorConfig(num_steps=1)
    with pytest.raises(ConfigError, match="layout_weights"):
        GeneratorConfig(layout_weights=(1.0, 1.0))
    with pytest.raises(ConfigError, match="max_lanes"):
        GeneratorConfig(max_lanes=8)
    with pytest.raises(ConfigError, match="sdf_size"):
        GeneratorConfig(sdf_size=64)


def test_bad_split_and_num():
    with pytest.raises(ValueError, match="train.*heldout"):
        generate_bank(2, split="test")
    with pytest.raises(ValueError, match="num"):
        generate_arrays(0)


def test_shapes_and_dtypes(bank):
    sizes = validate_arrays(bank, batched=True)
    assert sizes == {"T": 81, "A": 32, "L": 32, "P": 48, "H": 160, "W": 160, "S": 8}
    assert bank["ego_traj"].shape == (NUM, 81, 4)
    np.testing.assert_allclose(bank["dt"], 0.1)
    np.testing.assert_allclose(bank["ego_size"], np.tile([4.8, 2.0], (NUM, 1)))
    assert bank["ego_valid"].all()


def test_deterministic_and_splits_disjoint():
    a, b = generate_arrays(6, "train", 3), generate_arrays(6, "train", 3)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    h = generate_arrays(6, "heldout", 3)
    assert not np.array_equal(a["ego_traj"], h["ego_traj"])
    train = {scenario_seed("train", s, i) for s in range(3) for i in range(200)}
    held = {scenario_seed("heldout", s, i) for s in range(3) for i in range(200)}
    val = {scenario_seed("validation", s, i) for s in range(3) for i in range(200)}
    assert not train & held and not val & held and not val & train
    assert len(val) == 600


def test_validation_bank_is_checked_against_the_train_bank():
    from agents.train_config import load_config
    from agents.trainer import build_validation_bank

    cfg = load_config(None, ["scenarios.num_validation=3"])
    val = build_validation_bank(cfg, generate_bank(3, split="train"))
    assert val.num_scenarios == 3
    with pytest.raises(ValueError, match="shares 3 scenario id"):
        build_validation_bank(cfg, generate_bank(4, split="validation"))
    assert build_validation_bank(load_config(None, []), generate_bank(3)) is None
    with pytest.raises(ValueError, match="'scenarios.validation_path'"):
        build_validation_bank(load_config(None, ["scenarios.source=file", "scenarios.num_validation=2"]), val)


def test_scenario_id_rebuilds_the_bank_entry(bank):
    for i in (0, 7):
        one = to_numpy(generate_scenario(int(bank["scenario_id"][i])))
        for k, v in one.items():
            np.testing.assert_array_equal(v, bank[k][i], err_msg=k)


def test_each_layout_appears_and_weights_select(bank):
    layouts = (Layout.STRAIGHT, Layout.CURVE, Layout.INTERSECTION, Layout.MERGE)
    assert set(np.unique(bank["layout"])) == {int(x) for x in layouts}
    only = generate_arrays(4, config=GeneratorConfig(layout_weights=(0, 0, 1, 0)))
    assert (only["layout"] == Layout.INTERSECTION).all()


def _replay(traj):
    p = kinematics.DynamicsParams()
    ctrl = jax.vmap(lambda e: kinematics.expert_controls(e, 0.1, p))(jnp.asarray(traj))
    roll = jax.vmap(lambda s, c: kinematics.rollout(s, c, 0.1, p))(jnp.asarray(traj[:, 0]), ctrl)
    return np.asarray(ctrl), np.asarray(roll)


def test_expert_replays_through_the_bicycle_model(bank):
    ctrl, roll = _replay(bank["ego_traj"])
    p = kinematics.DynamicsParams()
    assert ctrl[..., 0].min() >= -p.max_decel and ctrl[..., 0].max() <= p.max_accel
    assert np.abs(ctrl[..., 1]).max() <= p.max_steer
    err = np.hypot(*(roll[..., :2] - bank["ego_traj"][:, 1:, :2]).transpose(2, 0, 1))
    assert np.median(err.max(1)) < 1e-4  # float32 round-off, 8 s open loop
    assert err.max() < 1e-3
    np.testing.assert_allclose(roll[..., 3], bank["ego_traj"][:, 1:, 3], atol=1e-4)


def test_expert_speeds_and_braking(bank):
    v = bank["ego_traj"][..., 3]
    assert 0.0 <= v.min() and v.max() <= 20.0
    assert 0.6 < np.mean((v >= 4.0) & (v <= 20.0))  # mostly 5-20 m/s (intersections slow down to turn)
    accel = np.diff(v, axis=1) / 0.1
    assert (accel.min(1) < -1.5).sum() >= 5  # some logs brake behind a slower leader / at a light


def test_expert_never_overlaps_agents(bank, ego_boxes):
    traj = bank["agent_traj"]
    agents = np.concatenate([traj[..., :3], np.broadcast_to(bank["agent_size"][:, None], traj.shape[:3] + (2,))], -1)
    hit = np.asarray(geometry.box_overlap(jnp.asarray(ego_boxes)[:, :, None], jnp.asarray(agents)))
    assert not (hit & bank["agent_valid"]).any()
    # shapely on a sample: true polygon intersection, plus the clearance of the nearest agent
    corners_e = np.asarray(geometry.box_corners(jnp.asarray(ego_boxes[:12, ::8])))
    corners_a = np.asarray(geometry.box_corners(jnp.asarray(agents[:12, ::8])))
    valid = bank["agent_valid"][:12, ::8]
    checked = 0
    for n, t, a in zip(*np.nonzero(valid)):
        assert not Polygon(corners_e[n, t]).intersects(Polygon(corners_a[n, t, a]))
        checked += 1
    assert checked > 100


def test_expert_stays_on_the_drivable_area(bank, ego_boxes):
    corners = geometry.box_corners(jnp.asarray(ego_boxes))  # (N, T, 4, 2)
    sd = jax.vmap(geometry.sdf_lookup)(
        jnp.asarray(bank["sdf"]), jnp.asarray(bank["sdf_origin"]), jnp.asarray(bank["sdf_res"]), corners
    )
    assert float(sd.max()) < 0.0


def test_sdf_negative_on_lanes_positive_far_away(bank):
    lookup = jax.jit(jax.vmap(geometry.sdf_lookup))
    d = np.asarray(
        lookup(
            jnp.asarray(bank["sdf"]),
            jnp.asarray(bank["sdf_origin"]),
            jnp.asarray(bank["sdf_res"]),
            jnp.asarray(bank["lane_points"]),
        )
    )  # (N, L, P)
    g = (bank["lane_points"] - bank["sdf_origin"][:, None, None]) / bank["sdf_res"][:, None, None, None]
    inside_grid = (g > 1).all(-1) & (g < np.array(bank["sdf"].shape[:0:-1]) - 2).all(-1)
    on_lane = inside_grid & (np.arange(g.shape[2]) < bank["lane_num_points"][..., None])
    assert on_lane.sum(axis=(1, 2)).min() > 20
    assert d[on_lane].max() < 0.0
    assert (bank["sdf"].max(axis=(1, 2)) > 10.0).all()  # the grid also covers off-road ground
    far = np.asarray(
        lookup(
            jnp.asarray(bank["sdf"]),
            jnp.asarray(bank["sdf_origin"]),
            jnp.asarray(bank["sdf_res"]),
            jnp.asarray(bank["sdf_origin"] - 300.0),
        )
    )
    assert (far > 100.0).all()


def test_lane_graph_is_consistent(bank):
    for n in range(NUM):
        num, left, right, succ = (bank[k][n] for k in ("lane_num_points", "lane_left", "lane_right", "lane_succ"))
        used = num > 0
        assert used.sum() >= 2 and (num[used] >= 2).all()
        for i in np.nonzero(used)[0]:
            if right[i] >= 0:
                assert used[right[i]] and left[right[i]] == i
            if left[i] >= 0:
                assert used[left[i]] and right[left[i]] == i
            for s in succ[i][succ[i] >= 0]:
                assert used[s] and s != i
            # padded by repeating the last valid point; spacing roughly uniform, 2-5 m
            # (outer lanes of a curve stretch by up to ~25%)
            pts = bank["lane_points"][n, i]
            np.testing.assert_array_equal(pts[num[i] :], np.broadcast_to(pts[num[i] - 1], pts[num[i] :].shape))
            step = np.hypot(*np.diff(pts[: num[i]], axis=0).T)
            assert step.max() < 6.0 and step.max() < 1.35 * step.min() + 1e-3
        assert (left[~used] == -1).all() and (right[~used] == -1).all() and (succ[~used] == -1).all()
        assert bank["ego_lane"][n].min() >= 0 and used[bank["ego_lane"][n]].all()
    inter = bank["layout"] == Layout.INTERSECTION
    assert (bank["lane_succ"][inter] >= 0).any(axis=(1, 2)).all()  # approach -> connector -> exit
    merge = bank["layout"] == Layout.MERGE
    assert (bank["lane_succ"][merge] >= 0).any(axis=(1, 2)).all()


def test_traffic_looks_like_logs(bank):
    types, valid, size = bank["agent_type"], bank["agent_valid"], bank["agent_size"]
    seen = valid.any(1)  # (N, A)
    assert (types[~seen] == AgentType.PAD).all() and (types[seen] != AgentType.PAD).all()
    assert np.mean(types[seen] == AgentType.VEHICLE) > 0.9
    cars = size[seen & (types == AgentType.VEHICLE)]
    assert 4.0 < np.median(cars[:, 0]) < 5.2 and 1.7 < np.median(cars[:, 1]) < 2.1
    assert (cars[:, 0] > 7.0).any()  # some trucks
    assert seen.sum(1).mean() > 8
    partial = seen & ~valid.all(1)  # entering or leaving the observed window
    assert partial.sum() > NUM
    assert (bank["agent_traj"][~valid] == 0).all()
    moving = bank["agent_traj"][..., 3][valid]
    assert moving.max() < 32.0 and np.median(moving) > 2.0


def test_static_boxes_are_off_the_expert_path(bank, ego_boxes):
    boxes, sv = bank["static_boxes"], bank["static_valid"]
    assert sv.sum() > NUM  # a few parked cars / cones per scenario
    hit = np.asarray(geometry.box_overlap(jnp.asarray(ego_boxes)[:, :, None], jnp.asarray(boxes)[:, None]))
    assert not (hit & sv[:, None]).any()


def test_agents_do_not_overlap_grossly(bank):
    st, v, sz = bank["agent_traj"], bank["agent_valid"], bank["agent_size"]
    shrunk = np.maximum(sz - 0.4, 0.1)
    st = st[:, ::4]
    boxes = jnp.asarray(np.concatenate([st[..., :3], np.broadcast_to(shrunk[:, None], st.shape[:3] + (2,))], -1))
    hit = np.asarray(geometry.box_overlap(boxes[:, :, :, None], boxes[:, :, None, :]))
    both = v[:, ::4, :, None] & v[:, ::4, None, :] & ~np.eye(st.shape[2], dtype=bool)
    assert (hit & both).sum() == 0


def test_cli_generate_and_show(tmp_path, capsys):
    out = tmp_path / "bank.npz"
    assert (
        main(
            [
                "scenarios",
                "generate",
                "--num",
                "5",
                "--split",
                "heldout",
                "--seed",
                "2",
                "--out",
                str(out),
                "--json",
                str(tmp_path / "gen.json"),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "generated 5 scenarios" in text and "layouts:" in text
    summary = json.loads((tmp_path / "gen.json").read_text())
    assert summary["num"] == 5 and sum(summary["layouts"].values()) == 5
    png = tmp_path / "scene.png"
    assert (
        main(["scenarios", "show", "--bank", str(out), "--index", "3", "--t", "10", "--out", str(png), "--size", "128"])
        == 0
    )
    assert png.stat().st_size > 1000
    png2 = tmp_path / "fly.png"
    assert (
        main(
            [
                "scenarios",
                "show",
                "--split",
                "heldout",
                "--seed",
                "2",
                "--index",
                "3",
                "--t",
                "10",
                "--out",
                str(png2),
                "--size",
                "128",
            ]
        )
        == 0
    )
    assert png.read_bytes() == png2.read_bytes()  # the bank entry and the on-the-fly scenario agree


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["scenarios", "generate", "--num", "2", "--split", "test"], "--split"),
        (["scenarios", "generate", "--num", "0"], "--num"),
        (["scenarios", "show", "--bank", "missing.npz"], "missing.npz"),
        (["scenarios", "show", "--index", "-1"], "--index"),
        (["scenarios", "show", "--t", "500", "--out", "x.png"], "--t"),
        (["scenarios", "show", "--out", "x.jpg"], "--out"),
    ],
)
def test_cli_errors_name_the_argument(argv, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert needle in capsys.readouterr().err


def test_cli_show_index_out_of_range(tmp_path, capsys):
    out = tmp_path / "b.npz"
    assert main(["scenarios", "generate", "--num", "2", "--out", str(out)]) == 0
    assert main(["scenarios", "show", "--bank", str(out), "--index", "2", "--out", str(tmp_path / "x.png")]) == 2
    assert "--index 2" in capsys.readouterr().err
