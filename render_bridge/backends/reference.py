"""Pure-torch reference 3DGS splatter (any device; meant for CPU and small images).

It follows gsplat 1.5's classic forward pass so the two agree pixel for pixel up to
float rounding:
  - world -> camera with `viewmats`; Gaussians with depth z outside [near, far] are dropped;
  - EWA projection: cov2d = J W Sigma W^T J^T with the Jacobian evaluated at the mean,
    x/z and y/z clamped to 1.3x the half field of view (gsplat's `persp_proj`);
  - low-pass dilation cov2d += eps2d * I (0.3 px^2), no opacity compensation ("classic");
  - opacity-aware 2D extent min(3.33, sqrt(2 ln(255 o))) sigma (only used to skip tiles);
  - pixel centres at (j + 0.5, i + 0.5); alpha = min(max_alpha, o exp(-q/2)), skipped
    when q < 0 or alpha < 1/255; front-to-back by camera depth; a Gaussian that would
    drop transmittance to <= 1e-4 ends the pixel and is not drawn (exclusive);
  - colour = sum of alpha T c + T_final * background, alpha image = 1 - T_final.
gsplat clamps alpha at 0.999 (the original 3DGS code at 0.99): `max_alpha` sets it.
"""

from __future__ import annotations

import math

import torch

from render_bridge import sh as sh_lib
from render_bridge.scene import covariance

ALPHA_THRESHOLD = 1.0 / 255.0
TRANSMITTANCE_THRESHOLD = 1e-4


def project(means, quats, scales, viewmat, K, width: int, height: int, near: float, far: float, eps2d: float = 0.3):
    """Project N Gaussians into one camera.

    means (N, 3), quats (N, 4), scales (N, 3), viewmat (4, 4) world->camera, K (3, 3).
    Returns means2d (N, 2) px, conics (N, 3) [a, b, c] of the inverse 2D covariance,
    depths (N,) m, cov2d (N, 2, 2) px^2 (dilated) and a validity mask (N,).
    """
    rot, trans = viewmat[:3, :3], viewmat[:3, 3]
    mc = means @ rot.T + trans
    cov_c = rot @ covariance(quats, scales) @ rot.T
    x, y, z = mc.unbind(-1)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    tan_fovx, tan_fovy = 0.5 * width / fx, 0.5 * height / fy
    lim_xp, lim_xn = (width - cx) / fx + 0.3 * tan_fovx, cx / fx + 0.3 * tan_fovx
    lim_yp, lim_yn = (height - cy) / fy + 0.3 * tan_fovy, cy / fy + 0.3 * tan_fovy
    zs = torch.where(z.abs() < 1e-6, torch.full_like(z, 1e-6), z)  # culled anyway; avoids inf
    rz = 1.0 / zs
    tx = zs * torch.minimum(lim_xp, torch.maximum(-lim_xn, x * rz))
    ty = zs * torch.minimum(lim_yp, torch.maximum(-lim_yn, y * rz))
    o = torch.zeros_like(z)
    jac = torch.stack([fx * rz, o, -fx * tx * rz * rz, o, fy * rz, -fy * ty * rz * rz], -1).reshape(-1, 2, 3)
    cov2d = jac @ cov_c @ jac.transpose(-1, -2)
    cov2d = cov2d + eps2d * torch.eye(2, dtype=cov2d.dtype, device=cov2d.device)
    a, b, c = cov2d[:, 0, 0], cov2d[:, 0, 1], cov2d[:, 1, 1]
    det = a * c - b * b
    valid = (z >= near) & (z <= far) & (det > 0)
    det_safe = torch.where(valid, det, torch.ones_like(det))
    conics = torch.stack([c / det_safe, -b / det_safe, a / det_safe], -1)
    means2d = torch.stack([fx * x * rz + cx, fy * y * rz + cy], -1)
    return means2d, conics, z, cov2d, valid


def _composite_chunk(px, py, means2d, conics, opac, colors, t_in, done, max_alpha):
    """Front-to-back compositing of n depth-sorted Gaussians over P pixels that start with
    transmittance t_in (P,) and finished flags done (P,) -> (premultiplied rgb (P, D),
    transmittance after (P,), done (P,))."""
    dx = means2d[None, :, 0] - px[:, None]
    dy = means2d[None, :, 1] - py[:, None]
    q = 0.5 * (conics[None, :, 0] * dx * dx + conics[None, :, 2] * dy * dy) + conics[None, :, 1] * dx * dy
    alpha = torch.clamp(opac[None] * torch.exp(-q), max=max_alpha)
    alpha = torch.where((q < 0) | (alpha < ALPHA_THRESHOLD), torch.zeros_like(alpha), alpha)
    t_after = t_in[:, None] * torch.cumprod(1.0 - alpha, dim=1)
    t_before = torch.cat([t_in[:, None], t_after[:, :-1]], dim=1)
    # monotone: once False stays False (the exclusive stop); finished pixels draw nothing
    drawn = (t_after > TRANSMITTANCE_THRESHOLD) & ~done[:, None]
    w = torch.where(drawn, alpha * t_before, torch.zeros_like(alpha))
    t_out = t_in * torch.prod(torch.where(drawn, 1.0 - alpha, torch.ones_like(alpha)), dim=1)
    return w @ colors, t_out, done | ~drawn[:, -1]


def _composite_tile(px, py, means2d, conics, opac, colors, bg, max_alpha, chunk=256):
    """Composite a tile's depth-sorted Gaussians in chunks, stopping once every pixel is done."""
    t = torch.ones_like(px)
    done = torch.zeros(px.shape, dtype=torch.bool, device=px.device)
    rgb = torch.zeros((px.shape[0], colors.shape[-1]), dtype=px.dtype, device=px.device)
    for s in range(0, means2d.shape[0], chunk):
        c, t, done = _composite_chunk(px, py, means2d[s : s + chunk], conics[s : s + chunk], opac[s : s + chunk],
                                      colors[s : s + chunk], t, done, max_alpha)  # fmt: skip
        rgb += c
        if bool(done.all()):
            break
    return rgb + t[:, None] * bg[None], 1.0 - t


def render_one(means, quats, scales, opacities, colors, viewmat, K, width, height, background=None,
               near=0.01, far=1e10, eps2d=0.3, max_alpha=0.999, tile_size=16, sh_degree=None):  # fmt: skip
    """One image. colors (N, D) or SH (N, K, 3) with sh_degree. Returns rgb (H, W, D), alpha (H, W, 1)."""
    means2d, conics, depths, cov2d, valid = project(means, quats, scales, viewmat, K, width, height, near, far, eps2d)
    if sh_degree is not None:
        campos = -viewmat[:3, :3].T @ viewmat[:3, 3]
        colors = sh_lib.eval_sh(colors[:, : (sh_degree + 1) ** 2], means - campos)
    d = colors.shape[-1]
    valid = valid & (opacities >= ALPHA_THRESHOLD)
    extend = torch.clamp(torch.sqrt(2.0 * torch.log(opacities.clamp_min(ALPHA_THRESHOLD) / ALPHA_THRESHOLD)), max=3.33)
    rx = torch.ceil(extend * torch.sqrt(cov2d[:, 0, 0].clamp_min(0)))
    ry = torch.ceil(extend * torch.sqrt(cov2d[:, 1, 1].clamp_min(0)))
    mx, my = means2d.unbind(-1)
    valid &= (mx + rx > 0) & (mx - rx < width) & (my + ry > 0) & (my - ry < height)
    idx = torch.nonzero(valid).squeeze(-1)
    idx = idx[torch.argsort(depths[idx], stable=True)]  # front to back
    m2, con, op, col = means2d[idx], conics[idx], opacities[idx], colors[idx]
    lo_x, hi_x, lo_y, hi_y = mx[idx] - rx[idx], mx[idx] + rx[idx], my[idx] - ry[idx], my[idx] + ry[idx]
    bg = torch.zeros(d, dtype=means.dtype, device=means.device) if background is None else background
    rgb = torch.empty((height, width, d), dtype=means.dtype, device=means.device)
    alpha = torch.empty((height, width, 1), dtype=means.dtype, device=means.device)
    for ty in range(math.ceil(height / tile_size)):
        y0, y1 = ty * tile_size, min((ty + 1) * tile_size, height)
        for tx in range(math.ceil(width / tile_size)):
            x0, x1 = tx * tile_size, min((tx + 1) * tile_size, width)
            # Gaussians whose extent touches the tile (outside it alpha < 1/255 anyway)
            sel = (hi_x > x0) & (lo_x < x1) & (hi_y > y0) & (lo_y < y1)
            jj, ii = torch.meshgrid(
                torch.arange(x0, x1, device=means.device), torch.arange(y0, y1, device=means.device), indexing="xy"
            )
            px, py = jj.reshape(-1).to(means.dtype) + 0.5, ii.reshape(-1).to(means.dtype) + 0.5
            c, a = _composite_tile(px, py, m2[sel], con[sel], op[sel], col[sel], bg, max_alpha)
            rgb[y0:y1, x0:x1] = c.reshape(y1 - y0, x1 - x0, d)
            alpha[y0:y1, x0:x1, 0] = a.reshape(y1 - y0, x1 - x0)
    return rgb, alpha


@torch.no_grad()
def rasterize(means, quats, scales, opacities, colors, viewmats, Ks, width: int, height: int,
              backgrounds=None, near=0.01, far=1e10, sh_degree=None, eps2d=0.3, max_alpha=0.999, tile_size=16):  # fmt: skip
    """Batched like gsplat.rasterization: means (B, N, 3) ... viewmats (B, C, 4, 4), Ks (B, C, 3, 3),
    colors (B, N, D) or SH (B, N, K, 3), backgrounds (B, C, D). Returns rgb (B, C, H, W, D), alpha (B, C, H, W, 1)."""
    b_, c_ = viewmats.shape[:2]
    rgbs, alphas = [], []
    for b in range(b_):
        for c in range(c_):
            bg = None if backgrounds is None else backgrounds[b, c]
            r, a = render_one(means[b], quats[b], scales[b], opacities[b], colors[b], viewmats[b, c], Ks[b, c],
                              width, height, bg, near, far, eps2d, max_alpha, tile_size, sh_degree)  # fmt: skip
            rgbs.append(r)
            alphas.append(a)
    shape = (b_, c_, height, width)
    return torch.stack(rgbs).reshape(shape + (-1,)), torch.stack(alphas).reshape(shape + (1,))
