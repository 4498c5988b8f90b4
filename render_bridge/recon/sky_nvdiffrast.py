"""Learnable sky / far field as a cube map, looked up per pixel from the camera ray.

The sky is 6 faces of R x R RGB texels (stored as logits, sigmoid -> [0, 1]), composited
behind the Gaussians as rgb + (1 - alpha) * sky(ray), as DriveStudio models the sky.
On CUDA the lookup is nvdiffrast's `texture(..., boundary_mode="cube")` (bilinear, with
filtering across face edges); elsewhere, or without nvdiffrast, a torch lookup with the
same face / uv convention (nvdiffrast's `indexCubeMap`: faces +x, -x, +y, -y, +z, -z)
and bilinear filtering clamped inside each face. nvdiffrast is imported lazily: it is
not on the package index (build it from source, see README / benchmarks/gpu_recon.sh).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from render_bridge.sky import ray_directions


def nvdiffrast_available() -> bool:
    """True when `nvdiffrast.torch` imports and CUDA is usable."""
    if not torch.cuda.is_available():
        return False
    try:
        import nvdiffrast.torch  # noqa: F401
    except ImportError:
        return False
    return True


def cube_uv(dirs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Face index (...,) int64 and u, v (...) in [0, 1] (u along texture width, v along
    height) of directions (..., 3), exactly as nvdiffrast's `indexCubeMap`."""
    x, y, z = dirs.unbind(-1)
    ax, ay, az = x.abs(), y.abs(), z.abs()
    use_z = az > torch.maximum(ax, ay)
    use_y = ~use_z & (ay > ax)
    c = torch.where(use_z, z, torch.where(use_y, y, x))
    face = torch.where(use_z, 4, torch.where(use_y, 2, 0)) + (c < 0).long()
    m = 0.5 / c.abs().clamp_min(1e-12)
    # (u numerator, v numerator) per face: +x (-z, -y), -x (z, -y), +y (x, z), -y (x, -z), +z (x, -y), -z (-x, -y)
    un = torch.where(use_z, torch.where(c < 0, -x, x), torch.where(use_y, x, torch.where(c < 0, z, -z)))
    vn = torch.where(use_y, torch.where(c < 0, -z, z), -y)
    return face, (un * m + 0.5).clamp(0, 1), (vn * m + 0.5).clamp(0, 1)


def lookup_torch(tex: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    """Bilinear cube-map lookup in torch: tex (6, R, R, D), dirs (..., 3) -> (..., D)."""
    r, d = tex.shape[1], tex.shape[-1]
    face, u, v = cube_uv(dirs)
    fx, fy = u * r - 0.5, v * r - 0.5
    x0, y0 = torch.floor(fx), torch.floor(fy)
    wx, wy = (fx - x0)[..., None], (fy - y0)[..., None]
    flat = tex.reshape(-1, d)

    def at(xx, yy):
        xx, yy = xx.clamp(0, r - 1).long(), yy.clamp(0, r - 1).long()
        return flat[(face * r + yy) * r + xx]

    top = at(x0, y0) * (1 - wx) + at(x0 + 1, y0) * wx
    bottom = at(x0, y0 + 1) * (1 - wx) + at(x0 + 1, y0 + 1) * wx
    return top * (1 - wy) + bottom * wy


class CubeSky(torch.nn.Module):
    """Learnable cube-map sky. backend: "auto" (nvdiffrast on CUDA when installed), "torch"
    or "nvdiffrast" (an error if it cannot be used)."""

    def __init__(self, resolution: int = 64, init_color=(0.7, 0.78, 0.88), backend: str = "auto", device=None):
        super().__init__()
        if backend not in ("auto", "torch", "nvdiffrast"):
            raise ValueError(f"sky backend must be auto, torch or nvdiffrast, got {backend!r}")
        c = torch.as_tensor(init_color, dtype=torch.float32).clamp(0.02, 0.98)
        self.logits = torch.nn.Parameter(torch.logit(c).expand(6, resolution, resolution, 3).clone().to(device))
        self.backend = backend

    @property
    def texture(self) -> torch.Tensor:
        """(6, R, R, 3) colours in [0, 1]."""
        return torch.sigmoid(self.logits)

    def active_backend(self) -> str:
        if self.backend == "torch" or not self.logits.is_cuda:
            if self.backend == "nvdiffrast":
                raise ValueError("sky backend 'nvdiffrast' needs CUDA tensors")
            return "torch"
        if nvdiffrast_available():
            return "nvdiffrast"
        if self.backend == "nvdiffrast":
            raise ValueError("sky backend 'nvdiffrast' requested but nvdiffrast is not installed")
        return "torch"

    def lookup(self, dirs: torch.Tensor) -> torch.Tensor:
        """Sky colours (..., 3) for unit directions (..., 3) in the world frame."""
        tex = self.texture
        if self.active_backend() == "nvdiffrast":
            import nvdiffrast.torch as dr

            flat = dirs.reshape(1, -1, 1, 3).contiguous()
            out = dr.texture(tex[None].contiguous(), flat, filter_mode="linear", boundary_mode="cube")
            return out.reshape(dirs.shape[:-1] + (3,))
        return lookup_torch(tex, dirs)

    def background(self, viewmats: torch.Tensor, Ks: torch.Tensor, width: int, height: int) -> torch.Tensor:
        """Per-pixel sky (..., H, W, 3) for cameras viewmats (..., 4, 4) world -> camera, Ks (..., 3, 3)."""
        return self.lookup(ray_directions(torch.linalg.inv(viewmats), Ks, width, height))

    @torch.no_grad()
    def equirect(self, height: int = 64, width: int = 128) -> torch.Tensor:
        """(height, width, 3) equirectangular texture in `render_bridge.sky.SkyMap`'s layout
        (rows zenith -> nadir, columns azimuth -pi..pi), for the camera env's renderer."""
        dev = self.logits.device
        el = (0.5 - (torch.arange(height, device=dev) + 0.5) / height) * torch.pi
        az = ((torch.arange(width, device=dev) + 0.5) / width - 0.5) * 2 * torch.pi
        el, az = torch.meshgrid(el, az, indexing="ij")
        dirs = torch.stack([torch.cos(el) * torch.cos(az), torch.cos(el) * torch.sin(az), torch.sin(el)], -1)
        return lookup_torch(self.texture, dirs)

    @torch.no_grad()
    def init_from(self, colors: torch.Tensor, dirs: torch.Tensor, iters: int = 50, lr: float = 0.3) -> None:
        """Fit the texture to observed sky colours (P, 3) seen along directions (P, 3)."""
        opt = torch.optim.Adam([self.logits], lr=lr)
        with torch.enable_grad():
            for _ in range(iters):
                opt.zero_grad()
                loss = F.mse_loss(lookup_torch(self.texture, dirs), colors)
                loss.backward()
                opt.step()
