"""Differentiable rasterization of one frame's cameras: gsplat on CUDA, the project's
reference splatter (pure torch, autograd) elsewhere.

    rgb, alpha, info = rasterize(means, quats, scales, opacities, colors, viewmats, Ks, W, H)

means (N, 3) world m, quats (N, 4) wxyz, scales (N, 3) m, opacities (N,) in [0, 1],
colors (N, D); viewmats (C, 4, 4) world -> camera; Ks (C, 3, 3). Returns premultiplied
rgb (C, H, W, D), alpha (C, H, W, 1) and gsplat's `info` (what its densification
strategy reads; empty for the reference splatter). Both use gsplat's classic mode
(eps2d 0.3, no opacity compensation), so a scene fitted with one renders the same with
the other.
"""

from __future__ import annotations

import torch

from render_bridge.backends import gsplat_backend


def resolve(backend: str, device: torch.device) -> str:
    """ "gsplat" or "reference" for `backend` in (auto, gsplat, reference) on `device`."""
    if backend not in ("auto", "gsplat", "reference"):
        raise ValueError(f"backend must be auto, gsplat or reference, got {backend!r}")
    if backend == "auto":
        return "gsplat" if device.type == "cuda" and gsplat_backend.available() else "reference"
    if backend == "gsplat" and (device.type != "cuda" or not gsplat_backend.available()):
        raise ValueError("backend 'gsplat' needs a CUDA device and the gsplat package")
    return backend


def rasterize(means, quats, scales, opacities, colors, viewmats, Ks, width: int, height: int,
              near: float = 0.1, far: float = 500.0, backend: str = "auto", absgrad: bool = False):  # fmt: skip
    """See the module docstring. Gradients flow to every Gaussian input."""
    name = resolve(backend, means.device)
    if name == "gsplat":
        import gsplat

        rgb, alpha, info = gsplat.rasterization(
            means, quats, scales, opacities, colors, viewmats, Ks, width, height, near_plane=near, far_plane=far,
            eps2d=0.3, packed=False, absgrad=absgrad, rasterize_mode="classic", render_mode="RGB")  # fmt: skip
        return rgb, alpha, info
    from render_bridge.backends.reference import render_one

    rgbs, alphas = [], []
    for c in range(viewmats.shape[0]):
        r, a = render_one(means, quats, scales, opacities, colors, viewmats[c], Ks[c], width, height, None, near, far)
        rgbs.append(r)
        alphas.append(a)
    return torch.stack(rgbs), torch.stack(alphas), {}
