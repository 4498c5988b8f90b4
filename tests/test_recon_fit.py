"""Reconstruction on the CPU with the reference splatter (autograd): a one-actor toy scene
fits at its logged views, actors move with their boxes, PLY round trip, the renderer's
scene bank, divergence stops with the last good checkpoint, resume, and the CLI."""

import math

import numpy as np
import pytest
import torch
from builders import bank_of, straight_road

from render_bridge import cameras, ply
from render_bridge.procedural_world import WorldConfig
from render_bridge.recon.capture import capture_log
from render_bridge.recon.fit import FitConfig, FitDiverged, fit
from render_bridge.recon.geometry import pose_by_id
from render_bridge.recon.metrics import psnr
from render_bridge.recon.model import ReconScene, activated

torch.set_num_threads(1)
BANK = bank_of(straight_road(T=21, A=1, agents=[(12.0, 0.0, 0.0, 6.0)]))
WORLD = WorldConfig(ground_spacing=1.0, buildings=False, far_ground=0.0, actor_gaussians=64)
RIG = cameras.RigConfig("front", 48, 32)
CFG = FitConfig(iterations=100, lr_means=1.6e-3, max_points=3000, backend="reference", ckpt_every=1000)
PSNR_LOGGED = 25.0  # dB at the training (logged) views after 100 steps; the LiDAR init alone is ~5 dB lower


@pytest.fixture(scope="module")
def cap():
    return capture_log(BANK, 0, RIG, WORLD, device="cpu", lidar_stride=2)


@pytest.fixture(scope="module")
def scene(cap):
    return fit(cap, CFG, progress=False, device="cpu")


def test_toy_scene_reconstructs_at_logged_views(cap, scene):
    train, val = cap.split(CFG.holdout_every)
    init = fit(cap, FitConfig(iterations=1, max_points=3000, backend="reference"), progress=False, device="cpu")
    target = cap.images[train] / 255.0
    p_fit = psnr(scene.render(cap.ego_poses[train], cap.actor_poses[train]).numpy(), target)
    p_init = psnr(init.render(cap.ego_poses[train], cap.actor_poses[train]).numpy(), target)
    assert p_fit > PSNR_LOGGED and p_fit > p_init + 3.0, (p_fit, p_init)
    assert (
        psnr(scene.render(cap.ego_poses[val], cap.actor_poses[val]).numpy(), cap.images[val] / 255.0) > PSNR_LOGGED - 3
    )
    assert scene.gaussian_set(1).num > 50  # the agent's points went to its box frame


def test_actor_gaussians_move_with_their_posed_box(scene):
    g = activated(scene.params)
    poses = torch.tensor([[0.0, 0.0, 0.0, 0.0], [20.0, -3.0, math.pi / 2, 1.0]])
    means, quats, opac = pose_by_id(g["means"], g["quats"], g["opacities"], g["actor"], poses)
    is_actor = g["actor"] == 1
    local = g["means"][is_actor]
    expect = torch.stack([-local[:, 1] + 20.0, local[:, 0] - 3.0, local[:, 2]], -1)  # yaw 90 deg, then translate
    torch.testing.assert_close(means[is_actor], expect, atol=1e-4, rtol=0)
    torch.testing.assert_close(means[~is_actor], g["means"][~is_actor])
    hidden = pose_by_id(g["means"], g["quats"], g["opacities"], g["actor"], poses * torch.tensor([1, 1, 1, 0.0]))[2]
    assert float(hidden[is_actor].max()) == 0.0 and torch.equal(hidden[~is_actor], g["opacities"][~is_actor])
    # the renderer's scene bank poses the same template the same way
    bank = scene.to_scene_bank()
    composed = bank.compose(torch.zeros(1, dtype=torch.int64), poses[None])
    m = bank.actors.num
    vis = composed.opacities[0, -m:] > 0
    got = composed.means[0, -m:][vis]
    assert got.shape[0] == int(is_actor.sum())
    torch.testing.assert_close(got, expect, atol=1e-4, rtol=0)


def test_ply_round_trip_of_a_fitted_scene(cap, scene, tmp_path):
    paths = scene.export_ply(str(tmp_path))
    assert [p.split("/")[-1] for p in paths] == ["background.ply", "actor_01.ply"]
    back = ReconScene.from_ply(str(tmp_path))
    bg, bg2 = scene.gaussian_set(-1), back.gaussian_set(-1)
    torch.testing.assert_close(bg2.means, bg.means)
    torch.testing.assert_close(bg2.scales, bg.scales, rtol=1e-5, atol=1e-7)
    ego, poses = cap.ego_poses[:2], cap.actor_poses[:2]
    torch.testing.assert_close(back.render(ego, poses), scene.render(ego, poses), atol=2e-4, rtol=0)
    v = ply.read_vertices(paths[0])
    keep = [n for n in v.dtype.names if n != "opacity"]
    broken = tmp_path / "broken.ply"
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {len(v)}"] + [
        f"property float {n}" for n in keep
    ]
    broken.write_bytes(("\n".join(header + ["end_header"]) + "\n").encode() + np.ascontiguousarray(v[keep]).tobytes())
    with pytest.raises(ValueError, match=r"broken.ply.*missing 3DGS properties \['opacity'\]"):
        ply.load(str(broken))
    scene.save(str(tmp_path / "scene.pt"))
    again = ReconScene.load(str(tmp_path / "scene.pt"))
    torch.testing.assert_close(again.render(ego, poses), scene.render(ego, poses))


def test_reconstruction_drives_the_camera_renderer(cap, scene):
    import jax

    from render_bridge.renderer import Renderer

    r = Renderer(scene.to_scene_bank(), RIG, backend="reference", device="cpu", dtype="float32", sky=scene.sky_map())
    ego = np.concatenate([cap.ego_poses[:2], np.zeros((2, 1), np.float32)], -1)
    views = np.asarray(jax.vmap(lambda e: cameras.view_matrices(e, RIG))(ego))
    img = r.render_torch(
        torch.zeros(2, dtype=torch.int64), torch.as_tensor(cap.actor_poses[:2]), torch.as_tensor(np.array(views))
    )
    own = scene.render(cap.ego_poses[:2], cap.actor_poses[:2])
    assert psnr(img.numpy(), own.numpy()) > 35.0  # same Gaussians; the sky is resampled to equirect


def test_divergence_keeps_last_good_checkpoint_and_resume(cap, tmp_path):
    cfg = FitConfig(iterations=6, max_points=500, backend="reference", ckpt_every=2, extra_start=4)
    f = cap.images.shape[1:4]
    bad = [(cap.ego_poses[:1], cap.actor_poses[:1], np.full((1,) + f + (3,), np.nan, np.float32), 1.0)]
    with pytest.raises(FitDiverged, match=r"step 4.*ckpt_0000004.pt") as err:
        fit(cap, cfg, extra_views=bad, ckpt_dir=str(tmp_path), progress=False, device="cpu")
    assert err.value.step == 4 and err.value.checkpoint.endswith("ckpt_0000004.pt")
    good = [(cap.ego_poses[:1], cap.actor_poses[:1], cap.images[:1] / 255.0, 0.5)]
    resumed = fit(cap, cfg, extra_views=good, ckpt_dir=str(tmp_path), progress=False, device="cpu")
    assert (
        resumed.meta["start_step"] == 4 and math.isfinite(resumed.meta["final_loss"]) and resumed.meta["val_psnr"] > 5
    )
    with pytest.raises(ValueError, match=r"extra_views\[0\]"):
        fit(
            cap, cfg, extra_views=[(cap.ego_poses[:1], cap.actor_poses[:1], cap.images[:1, :, :8], 1.0)], progress=False
        )


def test_cli_capture_fit_eval(tmp_path):
    from agents.cli import main
    from jaxsim.bank_io import save_bank

    bank = str(tmp_path / "bank.npz")
    save_bank(bank, BANK)
    cap_dir, scene_pt = str(tmp_path / "cap"), str(tmp_path / "scene.pt")
    common = ["--bank", bank]
    assert main(["recon", "capture", "--out", cap_dir, "--width", "32", "--height", "24", "--max-frames", "6",
                 "--gaussians", "2000", "--json", str(tmp_path / "c.json")] + common) == 0  # fmt: skip
    assert main(["recon", "fit", "--capture", cap_dir, "--out", scene_pt, "--iterations", "3", "--backend", "reference",
                 "--no-progress", "--ply", str(tmp_path / "ply")]) == 0  # fmt: skip
    js = str(tmp_path / "e.json")
    assert main(["recon", "eval", "--scene", scene_pt, "--offsets", "0,2", "--no-cousins", "--json", js,
                 "--out-dir", str(tmp_path / "grids")] + common) == 0  # fmt: skip
    import json

    table = json.load(open(js))
    assert set(table["offsets"]) == {"0", "2"} and table["offsets"]["2"]["views"] == 2 * table["offsets"]["0"]["views"]
    assert (tmp_path / "grids" / "grid_offset_2m.png").exists()
    assert main(["recon", "fit", "--capture", str(tmp_path / "nowhere"), "--out", scene_pt]) == 2
