"""Logged captures: ground truth equals the camera renderer, the on-disk layout round-trips,
and bad input names the file and the field (CPU, tiny sizes)."""

import json
import os

import numpy as np
import pytest
import torch
from builders import bank_of, straight_road

from render_bridge import cameras
from render_bridge.procedural_world import WorldConfig
from render_bridge.recon.capture import LoggedCapture, capture_log
from render_bridge.recon.evaluate import shifted_poses
from render_bridge.recon.geometry import log_actor_poses
from render_bridge.recon.groundtruth import render_groundtruth, world_scene

torch.set_num_threads(1)
BANK = bank_of(straight_road(T=11, A=1, agents=[(12.0, 0.0, 0.0, 6.0)]))
WORLD = WorldConfig(ground_spacing=1.5, buildings=False, far_ground=0.0, actor_gaussians=32)
RIG = cameras.RigConfig("front", 32, 24)


@pytest.fixture(scope="module")
def cap():
    return capture_log(BANK, 0, RIG, WORLD, device="cpu", max_frames=4, lidar_stride=4)


def test_groundtruth_matches_the_camera_renderer():
    from render_bridge.renderer import Renderer

    ego = np.asarray(BANK.ego_traj[0, :2], np.float32)
    poses = log_actor_poses(BANK, 0)[:2]
    gt = render_groundtruth(BANK, 0, ego[:, :3], poses, RIG, WORLD, device="cpu")
    r = Renderer(world_scene(BANK, 0, WORLD), RIG, backend="reference", device="cpu", dtype="float32")
    import jax

    views = jax.vmap(lambda e: cameras.view_matrices(e, RIG))(ego)
    ref = r.render_torch(torch.zeros(2, dtype=torch.int64), torch.as_tensor(poses), torch.as_tensor(np.array(views)))
    assert gt.shape == (2, 1, 24, 32, 3)
    np.testing.assert_allclose(gt.numpy(), ref.numpy(), atol=1e-5)


def test_capture_contents_and_round_trip(cap, tmp_path):
    assert cap.images.shape == (4, 1, 24, 32, 3) and cap.images.dtype == np.uint8
    assert cap.actor_poses.shape == (4, 2, 4) and cap.timestamps[1] == pytest.approx(0.1)
    assert cap.points.shape[0] > 50 and np.isfinite(cap.points).all()
    assert np.abs(cap.points[:, 2]).max() < 3.0  # road, curbs, the car: nothing floats
    # the capture's rig reproduces its calibration exactly
    np.testing.assert_allclose(cameras.intrinsics(cap.rig), cap.Ks, atol=1e-4)
    np.testing.assert_allclose(cameras.camera_to_ego(cap.rig), cap.cam_to_ego, atol=1e-5)
    cap.save(str(tmp_path))
    back = LoggedCapture.load(str(tmp_path))
    np.testing.assert_array_equal(back.images, cap.images)
    np.testing.assert_allclose(back.actor_poses, cap.actor_poses)
    np.testing.assert_allclose(back.points, cap.points)
    assert back.camera_names == cap.camera_names and back.meta["scenario_id"] == cap.meta["scenario_id"]


def _edit(tmp_path, cap, fn):
    cap.save(str(tmp_path))
    p = tmp_path / "capture.json"
    doc = json.loads(p.read_text())
    fn(doc)
    p.write_text(json.dumps(doc))


def test_bad_captures_name_file_and_field(cap, tmp_path):
    cap.save(str(tmp_path))
    os.remove(tmp_path / "images" / "000003_CAM_FRONT.png")
    with pytest.raises(ValueError, match=r"images.*3 frames.*ego_poses.*4 poses"):
        LoggedCapture.load(str(tmp_path))
    _edit(tmp_path, cap, lambda d: d["cameras"][0].pop("K"))
    with pytest.raises(ValueError, match=r"capture.json.*cameras\[0\]\.K.*intrinsics"):
        LoggedCapture.load(str(tmp_path))
    _edit(tmp_path, cap, lambda d: d["ego_poses"][2].__setitem__(1, float("nan")))
    with pytest.raises(ValueError, match=r"capture.json.*'ego_poses'.*non-finite.*\[2, 1\]"):
        LoggedCapture.load(str(tmp_path))
    _edit(tmp_path, cap, lambda d: d["timestamps"].pop())
    with pytest.raises(ValueError, match=r"'timestamps' has 3 entries but 'ego_poses' has 4"):
        LoggedCapture.load(str(tmp_path))
    cap.save(str(tmp_path))
    from PIL import Image

    Image.fromarray(np.zeros((20, 32, 3), np.uint8)).save(tmp_path / "images" / "000001_CAM_FRONT.png")
    with pytest.raises(ValueError, match=r"000001_CAM_FRONT.png.*32x20.*32x24"):
        LoggedCapture.load(str(tmp_path))


def test_shifted_poses_move_left_in_the_ego_frame():
    e = np.array([[1.0, 2.0, 0.0], [0.0, 0.0, np.pi / 2]], np.float32)
    np.testing.assert_allclose(shifted_poses(e, 2.0), [[1.0, 4.0, 0.0], [-2.0, 0.0, np.pi / 2]], atol=1e-6)
    np.testing.assert_allclose(
        shifted_poses(torch.as_tensor(e), -1.0).numpy(), [[1.0, 1.0, 0.0], [1.0, 0.0, np.pi / 2]], atol=1e-6
    )
