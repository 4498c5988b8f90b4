"""Sky as an environment map behind the Gaussians.

The rasterizer draws with a black background and returns premultiplied colour and
alpha; the sky is looked up per pixel from the camera ray's direction in an
equirectangular texture and composited as rgb + (1 - alpha) * sky, which is exactly a
per-pixel background. The lookup uses nvdiffrast's `texture` when it is installed and
the tensors are on CUDA, and `torch.nn.functional.grid_sample` otherwise (same bilinear
filtering with wrap-around in azimuth).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

HORIZON, ZENITH, GROUND = (0.78, 0.85, 0.92), (0.30, 0.50, 0.85), (0.35, 0.40, 0.30)


def procedural_sky(height: int = 64, width: int = 128, seed: int = 0) -> np.ndarray:
    """(height, width, 3) float32 equirect map: rows from zenith (top) to nadir, columns azimuth -pi..pi."""
    rng = np.random.default_rng(seed)
    elev = (0.5 - (np.arange(height) + 0.5) / height) * math.pi  # +pi/2 at the top row
    t = np.clip(np.sin(np.maximum(elev, 0.0)), 0, 1) ** 0.6
    sky = (1 - t)[:, None] * np.array(HORIZON) + t[:, None] * np.array(ZENITH)
    img = np.repeat(sky[:, None, :], width, axis=1)
    # soft clouds: smoothed noise, only above the horizon
    noise = rng.random((height // 4 + 2, width // 8 + 2))
    noise = np.kron(noise, np.ones((4, 8)))[:height, :width]
    clouds = np.clip((noise - 0.6) * 2.5, 0, 1) * (elev > 0.05)[:, None] * 0.5
    img = img * (1 - clouds[..., None]) + clouds[..., None] * 0.97
    img[elev < 0] = GROUND
    return img.astype(np.float32)


def ray_directions(camtoworld: torch.Tensor, Ks: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """World-frame unit ray directions (..., H, W, 3) through pixel centres; camtoworld (..., 4, 4), Ks (..., 3, 3)."""
    dev, dt = Ks.device, Ks.dtype
    j = torch.arange(width, device=dev, dtype=dt) + 0.5
    i = torch.arange(height, device=dev, dtype=dt) + 0.5
    fx, fy, cx, cy = (Ks[..., 0, 0], Ks[..., 1, 1], Ks[..., 0, 2], Ks[..., 1, 2])
    x = (j - cx[..., None]) / fx[..., None]  # (..., W)
    y = (i - cy[..., None]) / fy[..., None]  # (..., H)
    d = torch.stack(torch.broadcast_tensors(x[..., None, :], y[..., :, None], torch.ones_like(x[..., None, :])), -1)
    d = torch.einsum("...ij,...hwj->...hwi", camtoworld[..., :3, :3], d)
    return d / torch.linalg.norm(d, dim=-1, keepdim=True)


class SkyMap:
    """Equirect sky texture on a device; `lookup(dirs)` -> colours (..., 3)."""

    def __init__(self, texture: np.ndarray | torch.Tensor | None = None, device=None, use_nvdiffrast: str = "auto"):
        tex = procedural_sky() if texture is None else texture
        self.texture = torch.as_tensor(np.asarray(tex), dtype=torch.float32, device=device).contiguous()
        self._dr = None
        if use_nvdiffrast != "never" and self.texture.is_cuda:
            try:
                import nvdiffrast.torch as dr

                self._dr = dr
            except ImportError:
                if use_nvdiffrast == "always":
                    raise
        self.backend = "nvdiffrast" if self._dr is not None else "torch"

    def lookup(self, dirs: torch.Tensor) -> torch.Tensor:
        az = torch.atan2(dirs[..., 1], dirs[..., 0])
        el = torch.asin(dirs[..., 2].clamp(-1, 1))
        u = (az / (2 * math.pi) + 0.5) % 1.0  # [0, 1) left to right
        v = 0.5 - el / math.pi  # 0 at the zenith
        uv = torch.stack([u, v], -1)
        lead = uv.shape[:-1]
        if self._dr is not None:
            # as a (1, rows, 1024) image: one column of millions of rows overflows CUDA's grid
            # height (65,535 blocks) and crashed the process on the H200 (2026-11-29)
            n = uv[..., 0].numel()
            rows = -(-n // 1024)
            flat = F.pad(uv.reshape(-1, 2), (0, 0, 0, rows * 1024 - n)).reshape(1, rows, 1024, 2).contiguous()
            out = self._dr.texture(self.texture[None], flat, filter_mode="linear", boundary_mode="wrap")
            return out.reshape(-1, 3)[:n].reshape(lead + (3,))
        grid = (uv * 2 - 1).reshape(1, -1, 1, 2)
        tex = self.texture.permute(2, 0, 1)[None]
        out = F.grid_sample(tex, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return out[0, :, :, 0].T.reshape(lead + (3,))

    def background(self, viewmats: torch.Tensor, Ks: torch.Tensor, width: int, height: int) -> torch.Tensor:
        """Per-pixel sky (..., H, W, 3) for cameras viewmats (..., 4, 4) world->camera."""
        return self.lookup(ray_directions(torch.linalg.inv(viewmats), Ks, width, height))
