"""The pure-torch reference splatter against analytic cases (CPU)."""

import math

import numpy as np
import pytest
import torch

from render_bridge.backends.reference import rasterize
from render_bridge.scene import GaussianSet, SceneBank, empty

torch.set_num_threads(1)  # the CPU is shared; threads only fight here

W = H = 32
F = 40.0
K = torch.tensor([[[[F, 0, W / 2], [0, F, H / 2], [0, 0, 1.0]]]])
EYE = torch.eye(4)[None, None]


def splat(means, scales, opac, colors, quats=None, bg=None):
    n = len(means)
    quats = torch.tensor([[1.0, 0, 0, 0]] * n) if quats is None else torch.as_tensor(quats, dtype=torch.float32)
    bgs = None if bg is None else torch.tensor(bg, dtype=torch.float32)[None, None]
    rgb, alpha = rasterize(torch.tensor(means, dtype=torch.float32)[None], quats[None],
                           torch.tensor(scales, dtype=torch.float32)[None], torch.tensor(opac, dtype=torch.float32)[None],
                           torch.tensor(colors, dtype=torch.float32)[None], EYE, K, W, H, backgrounds=bgs)  # fmt: skip
    return rgb[0, 0].numpy(), alpha[0, 0, ..., 0].numpy()


def test_single_gaussian_footprint_matches_ewa_formula():
    z, s, o = 8.0, 0.15, 0.8
    rgb, alpha = splat([[0.0, 0.0, z]], [[s, s, s]], [o], [[1.0, 0.5, 0.0]], bg=[0.0, 0.0, 1.0])
    var = (F * s / z) ** 2 + 0.3  # EWA projection at the optical axis plus the 0.3 px^2 low-pass
    jj, ii = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5, indexing="xy")
    r2 = (jj - W / 2) ** 2 + (ii - H / 2) ** 2
    expect = o * np.exp(-0.5 * r2 / var)
    expect[expect < 1 / 255] = 0.0  # gsplat skips contributions below 1/255
    np.testing.assert_allclose(alpha, expect, atol=1e-5)
    np.testing.assert_allclose(rgb[..., 0], expect, atol=1e-5)
    np.testing.assert_allclose(rgb[..., 2], 1.0 - expect, atol=1e-5)  # background shows through
    assert alpha[0, 0] == 0.0 and alpha.max() > 0.5


def test_off_axis_gaussian_lands_where_the_pinhole_projects_it():
    x, y, z = 1.0, -0.5, 10.0
    _, alpha = splat([[x, y, z]], [[0.05] * 3], [0.9], [[1, 1, 1]])
    i, j = np.unravel_index(np.argmax(alpha), alpha.shape)
    assert (j + 0.5, i + 0.5) == pytest.approx((F * x / z + W / 2, F * y / z + H / 2), abs=0.5)


def test_anisotropic_gaussian_is_elongated_along_its_axis():
    # scale 0.6 m along x, 0.05 m along y; rotating 90 deg about the optical axis swaps them
    q90 = [math.cos(math.pi / 4), 0, 0, math.sin(math.pi / 4)]
    _, a = splat([[0, 0, 8.0]], [[0.6, 0.05, 0.05]], [0.9], [[1, 1, 1]])
    _, b = splat([[0, 0, 8.0]], [[0.6, 0.05, 0.05]], [0.9], [[1, 1, 1]], quats=[q90])
    assert (a[H // 2] > 0.1).sum() > 3 * (a[:, W // 2] > 0.1).sum()
    np.testing.assert_allclose(a, b.T, atol=1e-5)


def gsplat_pixel(alphas, colors, bg):
    """gsplat's per-pixel loop, written out: front to back, exclusive stop at T <= 1e-4."""
    t, out = 1.0, np.zeros(3)
    for a, c in zip(alphas, colors):
        a = min(a, 0.999)
        if a < 1 / 255:
            continue
        if t * (1 - a) <= 1e-4:
            break
        out += a * t * np.asarray(c)
        t *= 1 - a
    return out + t * np.asarray(bg), 1 - t


@pytest.mark.parametrize("opacities", [[0.6, 0.5], [1.0, 0.7], [0.9] * 6, [0.999, 0.95, 0.9, 0.5]])
def test_ordering_alpha_compositing_clamp_and_cutoff(opacities):
    n = len(opacities)
    depths = np.linspace(4.0, 12.0, n)
    colors = np.random.default_rng(n).uniform(size=(n, 3))
    means = [[0.0, 0.0, d] for d in depths]
    bg = [0.2, 0.3, 0.4]
    # large scales: the centre pixel sees each Gaussian at (almost) its full opacity
    scales = [[2.0 * d / F * 20] * 3 for d in depths]
    centre_alpha = [
        o * math.exp(-0.5 * 0.5 / ((F * s[0] / d) ** 2 + 0.3)) for o, s, d in zip(opacities, scales, depths)
    ]
    expect_rgb, expect_a = gsplat_pixel(centre_alpha, colors, bg)
    rgb, alpha = splat(means, scales, opacities, colors, bg=bg)
    np.testing.assert_allclose(rgb[H // 2, W // 2], expect_rgb, atol=1e-5)
    assert alpha[H // 2, W // 2] == pytest.approx(expect_a, abs=1e-5)
    # the input order does not matter: sorting is by camera depth
    perm = np.random.default_rng(0).permutation(n)
    rgb2, _ = splat(
        [means[k] for k in perm], [scales[k] for k in perm], [opacities[k] for k in perm], colors[perm], bg=bg
    )
    np.testing.assert_allclose(rgb, rgb2, atol=1e-6)


def test_gaussians_behind_the_camera_or_transparent_are_culled():
    rgb, alpha = splat([[0, 0, -5.0], [0, 0, 5.0]], [[0.5] * 3, [0.5] * 3], [0.9, 0.003], [[1, 0, 0], [0, 1, 0]])
    assert alpha.max() == 0.0 and rgb.max() == 0.0


def test_actor_moves_in_the_image_when_its_pose_moves():
    tmpl = GaussianSet(torch.tensor([[[[0.0, 0.0, 0.5]]]]), torch.tensor([[[[1.0, 0, 0, 0]]]]),
                       torch.full((1, 1, 1, 3), 0.4), torch.tensor([[[0.95]]]), torch.tensor([[[[1.0, 0, 0]]]]))  # fmt: skip
    bg = empty(1)
    bank = SceneBank(GaussianSet(*(t[None] for t in (bg.means, bg.quats, bg.scales, bg.opacities, bg.colors))), tmpl)
    # camera at the world origin, 0.5 m up, looking along +x (OpenCV axes in the world)
    cam_to_world = torch.tensor([[0.0, 0, 1, 0], [-1, 0, 0, 0], [0, -1, 0, 0.5], [0, 0, 0, 1]])
    view = torch.linalg.inv(cam_to_world)[None, None]
    cols = []
    for y in (0.0, 1.5, -1.5):
        g = bank.compose(torch.tensor([0]), torch.tensor([[[10.0, y, 0.3, 1.0]]]))
        _, alpha = rasterize(g.means, g.quats, g.scales, g.opacities, g.colors, view, K, W, H)
        a = alpha[0, 0, ..., 0].numpy()
        cols.append((a.sum(0) * (np.arange(W) + 0.5)).sum() / a.sum())
    assert cols[0] == pytest.approx(W / 2, abs=0.3)
    assert cols[1] < cols[0] - 4 and cols[2] > cols[0] + 4  # +y is left in the image
    g = bank.compose(torch.tensor([0]), torch.tensor([[[10.0, 0.0, 0.0, 0.0]]]))  # invisible actor
    _, alpha = rasterize(g.means, g.quats, g.scales, g.opacities, g.colors, view, K, W, H)
    assert alpha.max() == 0.0
