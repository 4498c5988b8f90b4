"""Image quality metrics: PSNR and SSIM (Wang et al. 2004), numpy or torch in, float out.

Images are (..., H, W, 3) float in [0, 1] (uint8 is scaled by 1/255). SSIM uses an
11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, 'valid' filtering per channel
(no padding), averaged over pixels, channels and leading dims. `ssim_torch` is the
differentiable form the fit's loss uses. LPIPS is left out: it needs backbone weights
that no installed package ships.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

C1, C2 = 0.01**2, 0.03**2


def _as_float(x) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    return t.float() / 255.0 if t.dtype == torch.uint8 else t.float()


def psnr(a, b, max_val: float = 1.0) -> float:
    """10 log10(max^2 / MSE) in dB over all elements; inf for identical images."""
    a, b = _as_float(a), _as_float(b).to(_as_float(a).device)
    if a.shape != b.shape:
        raise ValueError(f"psnr: shapes differ {tuple(a.shape)} vs {tuple(b.shape)}")
    mse = float(torch.mean((a.double() - b.double()) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(max_val**2 / mse)


def psnr_per_image(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR (dB) of each image over its last three dims: (..., H, W, 3) -> (...)."""
    mse = ((a.float() - b.float()) ** 2).mean(dim=(-1, -2, -3))
    return 10.0 * torch.log10(1.0 / mse.clamp_min(1e-12))


def _window(size: int = 11, sigma: float = 1.5, device=None, dtype=torch.float32) -> torch.Tensor:
    x = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim_map(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-pixel SSIM (M, D, H - 10, W - 10) of images (..., H, W, D) flattened to M."""
    if a.shape != b.shape:
        raise ValueError(f"ssim: shapes differ {tuple(a.shape)} vs {tuple(b.shape)}")
    h, w, d = a.shape[-3:]
    if h < 11 or w < 11:
        raise ValueError(f"ssim needs images of at least 11x11 pixels, got {w}x{h}")
    x = a.reshape(-1, h, w, d).permute(0, 3, 1, 2).reshape(-1, 1, h, w)
    y = b.reshape(-1, h, w, d).permute(0, 3, 1, 2).reshape(-1, 1, h, w)
    win = _window(device=a.device, dtype=a.dtype)
    mx, my = F.conv2d(x, win), F.conv2d(y, win)
    sxx = F.conv2d(x * x, win) - mx * mx
    syy = F.conv2d(y * y, win) - my * my
    sxy = F.conv2d(x * y, win) - mx * my
    m = ((2 * mx * my + C1) * (2 * sxy + C2)) / ((mx * mx + my * my + C1) * (sxx + syy + C2))
    return m.reshape(-1, d, h - 10, w - 10)


def ssim_torch(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean SSIM as a differentiable scalar tensor."""
    return ssim_map(a, b).mean()


def ssim_per_image(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """SSIM of each image: (..., H, W, 3) -> (...)."""
    return ssim_map(a.float(), b.float()).mean(dim=(1, 2, 3)).reshape(a.shape[:-3])


def ssim(a, b) -> float:
    """Mean SSIM in [-1, 1] (1 for identical images)."""
    a, b = _as_float(a).double(), _as_float(b).double()
    return float(ssim_map(a, b.to(a.device)).mean())
