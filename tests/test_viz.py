"""Scenario pictures: draw_scene / draw_log images and the PNG, GIF and MP4 writers."""

from __future__ import annotations

import numpy as np
import pytest
from builders import bank_of, straight_road
from PIL import Image

from jaxsim import viz
from jaxsim.procedural import generate_scenario, scenario_seed


@pytest.fixture(scope="module")
def scene():
    return generate_scenario(scenario_seed("train", 0, 2))


def _colour_count(img, colour, tol=40):
    return int((np.abs(img.astype(int) - np.array(colour)).sum(-1) < tol).sum())


def test_draw_scene_shape_and_content(scene):
    img = viz.draw_scene(scene, t=5, size_px=256)
    assert img.shape == (256, 256, 3) and img.dtype == np.uint8
    assert _colour_count(img, viz.ROAD) > 1000  # drivable area
    assert _colour_count(img, viz.BACKGROUND) > 1000  # off-road
    assert _colour_count(img, viz.EGO) > 10
    assert _colour_count(img, viz.ROUTE) > 10


def test_draw_scene_with_simulated_states_and_highlight(scene):
    agents = np.asarray(scene.agent_traj[10])
    valid = np.asarray(scene.agent_valid[10])
    highlight = valid.copy()
    ego = np.asarray(scene.ego_traj[10]) + np.array([1.0, 0.0, 0.1, 0.0])
    route = np.asarray(scene.ego_traj[:, :2])[::5]
    img = viz.draw_scene(
        scene, t=0, ego_state=ego, agents=agents, agent_valid=valid, route=route, size_px=200, highlight=highlight
    )
    assert img.shape == (200, 200, 3)
    assert _colour_count(img, viz.HIGHLIGHT) > 10
    plain = viz.draw_scene(scene, t=10, size_px=200)
    assert _colour_count(plain, viz.HIGHLIGHT) == 0


def test_draw_scene_view_and_errors(scene):
    cx, cy, _ = viz.default_view(scene)
    img = viz.draw_scene(scene, view=(cx, cy, 400.0), size_px=64)
    assert img.shape == (64, 64, 3)
    with pytest.raises(ValueError, match="t="):
        viz.draw_scene(scene, t=10_000)
    bank = bank_of(straight_road(), straight_road())
    with pytest.raises(ValueError, match="bank"):
        viz.draw_scene(bank)
    one = viz.draw_scene(bank[0], size_px=96)  # hand-built scenarios draw too
    assert _colour_count(one, viz.ROAD) > 100


def test_save_png_and_gif(scene, tmp_path):
    frames = viz.draw_log(scene, size_px=64, every=20)
    assert len(frames) == 5 and all(f.shape == (64, 64, 3) for f in frames)
    viz.save_png(frames[0], tmp_path / "sub" / "a.png")
    back = np.asarray(Image.open(tmp_path / "sub" / "a.png").convert("RGB"))
    np.testing.assert_array_equal(back, frames[0])
    viz.save_animation(frames, tmp_path / "a.gif", fps=5)
    gif = Image.open(tmp_path / "a.gif")
    assert gif.n_frames == 5
    with pytest.raises(ValueError, match=".gif or .mp4"):
        viz.save_animation(frames, tmp_path / "a.avi")
    with pytest.raises(ValueError, match="uint8"):
        viz.save_png(np.zeros((4, 4)), tmp_path / "bad.png")


@pytest.mark.filterwarnings("ignore:os.fork")  # imageio starts ffmpeg in a subprocess
def test_save_mp4(scene, tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    frames = viz.draw_log(scene, size_px=64, every=10)
    viz.save_animation(frames, tmp_path / "a.mp4", fps=10)
    assert (tmp_path / "a.mp4").stat().st_size > 500
