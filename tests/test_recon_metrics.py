"""PSNR / SSIM against hand-computed cases, and the cube-map sky's face / uv convention (CPU)."""

import math

import numpy as np
import pytest
import torch

from render_bridge.recon.metrics import psnr, ssim, ssim_torch
from render_bridge.recon.sky_nvdiffrast import CubeSky, cube_uv, lookup_torch


def test_psnr_identical_is_infinite_and_known_noise_gives_known_value():
    a = np.full((2, 16, 16, 3), 0.5, np.float32)
    assert psnr(a, a) == math.inf
    noise = np.where(np.indices(a.shape).sum(0) % 2 == 0, 0.1, -0.1).astype(np.float32)
    assert psnr(a, a + noise) == pytest.approx(20.0, abs=1e-4)  # MSE = 0.01 -> 10 log10(1 / 0.01)
    b = a.copy()
    b[0, 0, 0, 0] = 1.5  # one element off by 1 out of 1536 -> MSE = 1/1536
    assert psnr(a, b) == pytest.approx(10 * math.log10(1536), abs=1e-4)
    # uint8 is scaled by 1/255: a one-level error everywhere is 20 log10(255) dB
    u = np.full((4, 4, 3), 100, np.uint8)
    assert psnr(u, u + 1) == pytest.approx(20 * math.log10(255), abs=1e-4)
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(a, a[0])


def test_ssim_hand_cases():
    a = np.full((16, 16, 3), 0.5)
    assert ssim(a, a) == pytest.approx(1.0)
    # constant images: no variance, so SSIM is the luminance term (2ab + C1) / (a^2 + b^2 + C1)
    c1 = 0.01**2
    expected = (2 * 0.5 * 0.25 + c1) / (0.5**2 + 0.25**2 + c1)
    assert ssim(a, np.full_like(a, 0.25)) == pytest.approx(expected, abs=1e-9)
    # an image against its negative around the mean: correlation -1 -> structure term < 0
    rng = np.random.default_rng(0)
    x = 0.5 + 0.2 * rng.standard_normal((32, 32, 3))
    assert ssim(x, 1.0 - x) < 0
    t = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    ssim_torch(t, torch.tensor(1.0 - x, dtype=torch.float32)).backward()
    assert torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="11x11"):
        ssim(a[:8, :8], a[:8, :8])


def test_cube_faces_and_lookup():
    dirs = torch.tensor([[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1], [1, 0.5, -0.25]])
    face, u, v = cube_uv(dirs)
    assert face.tolist() == [0, 1, 2, 3, 4, 5, 0]
    assert torch.allclose(u[:6], torch.full((6,), 0.5)) and torch.allclose(v[:6], torch.full((6,), 0.5))
    # +x face: u = -z / (2|x|) + 0.5, v = -y / (2|x|) + 0.5 (nvdiffrast's indexCubeMap)
    assert u[6].item() == pytest.approx(0.625) and v[6].item() == pytest.approx(0.25)
    tex = torch.zeros(6, 4, 4, 3)
    for f in range(6):
        tex[f] = f / 5.0
    out = lookup_torch(tex, dirs[:6])
    assert torch.allclose(out[:, 0], torch.arange(6) / 5.0)
    sky = CubeSky(8, init_color=(0.2, 0.4, 0.6))
    assert sky.active_backend() == "torch"
    eq = sky.equirect(8, 16)
    assert eq.shape == (8, 16, 3) and torch.allclose(eq, torch.tensor([0.2, 0.4, 0.6]).expand(8, 16, 3), atol=1e-5)
