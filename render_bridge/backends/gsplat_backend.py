"""gsplat (CUDA) backend: one `gsplat.rasterization` call draws many envs' scenes.

Written against gsplat 1.5.3, whose `rasterization` takes leading batch dims:
means (B, N, 3), quats (B, N, 4) wxyz, scales (B, N, 3), opacities (B, N), colors
(B, N, D) or SH (B, N, K, 3) with `sh_degree`, viewmats (B, C, 4, 4) world->camera,
Ks (B, C, 3, 3), backgrounds (B, C, D); it returns images (B, C, H, W, D) and alphas
(B, C, H, W, 1). gsplat is imported lazily: it JIT-compiles its CUDA extension on first
use (about a minute; point TORCH_EXTENSIONS_DIR at a kept folder to reuse it).
"""

from __future__ import annotations

import torch


def available() -> bool:
    """True when CUDA is usable and gsplat imports."""
    if not torch.cuda.is_available():
        return False
    try:
        import gsplat  # noqa: F401
    except ImportError:
        return False
    return True


@torch.no_grad()
def rasterize(means, quats, scales, opacities, colors, viewmats, Ks, width: int, height: int,
              backgrounds=None, near=0.01, far=1e10, sh_degree=None, packed: bool = True, tile_size: int = 16):  # fmt: skip
    """Same contract as `render_bridge.backends.reference.rasterize` (classic mode, eps2d 0.3)."""
    import gsplat

    if not means.is_cuda:
        raise ValueError("the gsplat backend needs CUDA tensors; use backend='reference' on the CPU")
    rgb, alpha, _ = gsplat.rasterization(
        means, quats, scales, opacities, colors, viewmats, Ks, width, height,
        near_plane=near, far_plane=far, eps2d=0.3, sh_degree=sh_degree, packed=packed,
        tile_size=tile_size, backgrounds=backgrounds, render_mode="RGB", rasterize_mode="classic",
    )  # fmt: skip
    return rgb, alpha
