"""Batched, chunked rendering of many envs' cameras: JAX poses in, JAX images out.

    renderer = Renderer(scene_bank, RigConfig("front", 128, 128), backend="auto")
    images = renderer.render(scenario_idx, actor_poses, viewmats)   # JAX arrays in and out

Inputs come from JAX (`render_bridge.cameras`): scenario_idx (B,) int32, actor_poses
(B, 1 + A, 4) [x, y, yaw, visible] and viewmats (B, C, 4, 4). They cross to torch by
DLPack, each chunk of at most `max_batch` envs is composed (background + posed actors)
and rasterized in one backend call, written into one preallocated output
(B, C, H, W, 3) uint8 (or float32 in [0, 1]) and handed back to JAX by DLPack.
Chunking bounds the backend's working memory for very large batches.
"""

from __future__ import annotations

import torch

from jaxsim.config_utils import check_choice, check_range
from render_bridge import backends, cameras
from render_bridge import dlpack_bridge as bridge
from render_bridge.scene import SceneBank
from render_bridge.sky import SkyMap


class Renderer:
    """Camera images for envs of a `SceneBank` (see module docstring)."""

    def __init__(self, scene_bank: SceneBank, rig: cameras.RigConfig = cameras.RigConfig(), backend: str = "auto",
                 device=None, max_batch: int = 256, dtype: str = "uint8", sky: SkyMap | bool = True, packed: bool = True):  # fmt: skip
        check_choice("dtype", dtype, ("uint8", "float32"))
        check_range("max_batch", max_batch, 1, 1_000_000)
        self.backend = backends.resolve(backend)
        self.device = torch.device(device) if device is not None else bridge.default_torch_device()
        if self.backend == "gsplat" and self.device.type != "cuda":
            raise ValueError(f"backend 'gsplat' needs a CUDA device, got {self.device}")
        self.rig, self.max_batch, self.dtype, self.packed = rig, max_batch, dtype, packed
        self.scene_bank = scene_bank.to(self.device)
        self.Ks = torch.as_tensor(cameras.intrinsics(rig), device=self.device)
        self.sky = SkyMap(device=self.device) if sky is True else (sky or None)
        self._rasterize = backends.get(self.backend)

    @property
    def image_shape(self) -> tuple:
        return (self.rig.num_cameras, self.rig.height, self.rig.width, 3)

    def rasterize(self, g, viewmats: torch.Tensor):
        """Backend call on composed Gaussians g (B, N) -> rgb (B, C, H, W, 3) premultiplied, alpha (B, C, H, W, 1)."""
        b, c = viewmats.shape[:2]
        Ks = self.Ks[None].expand(b, c, 3, 3)
        colors, degree = g.colors.clamp_min(0.0), None
        if g.sh_rest is not None:  # view-dependent: hand the SH bands to the backend
            from render_bridge.sh import rgb_to_sh0

            colors, degree = torch.cat([rgb_to_sh0(g.colors)[..., None, :], g.sh_rest], dim=-2), g.sh_degree
        kw = dict(backgrounds=None, near=self.rig.near, far=self.rig.far, sh_degree=degree)
        if self.backend == "gsplat":
            kw["packed"] = self.packed
        return self._rasterize(
            g.means, g.quats, g.scales, g.opacities, colors, viewmats, Ks, self.rig.width, self.rig.height, **kw
        )

    @torch.no_grad()
    def render_torch(self, scenario_idx: torch.Tensor, poses: torch.Tensor, viewmats: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W, 3) as a torch tensor from torch inputs (see module docstring)."""
        b = viewmats.shape[0]
        out_dtype = torch.uint8 if self.dtype == "uint8" else torch.float32
        out = torch.empty((b,) + self.image_shape, dtype=out_dtype, device=self.device)
        idx, poses, viewmats = (
            scenario_idx.to(self.device, torch.int64),
            poses.to(self.device),
            viewmats.to(self.device),
        )
        for s in range(0, b, self.max_batch):
            e = min(s + self.max_batch, b)
            g = self.scene_bank.compose(idx[s:e], poses[s:e])
            rgb, alpha = self.rasterize(g, viewmats[s:e])
            if self.sky is not None:
                rgb = rgb + (1.0 - alpha) * self.sky.background(viewmats[s:e], self.Ks, self.rig.width, self.rig.height)
            rgb = rgb.clamp_(0.0, 1.0)
            out[s:e] = (rgb * 255.0 + 0.5).to(torch.uint8) if self.dtype == "uint8" else rgb
        return out

    def render(self, scenario_idx, poses, viewmats):
        """JAX in, JAX out, zero copy both ways: images (B, C, H, W, 3) on the renderer's device."""
        t_idx, t_poses, t_views = (bridge.jax_to_torch(x) for x in (scenario_idx, poses, viewmats))
        return bridge.torch_to_jax(self.render_torch(t_idx, t_poses, t_views))

    def render_rows(self, scenario_idx, poses, viewmats, mask):
        """Images of only the envs where `mask` (B,) (host bool) is True, e.g. the final
        states of episodes that just ended. Returns (rows (K',) int32 JAX, images (K', C,
        H, W, 3)), K' = the count padded up to a power of two (>= 8) by repeating the
        first row so jitted consumers retrace at most log2(B) times; None if none."""
        import numpy as np

        rows = np.flatnonzero(np.asarray(mask))
        if rows.size == 0:
            return None
        k = max(8, 1 << int(np.ceil(np.log2(rows.size))))
        rows = np.concatenate([rows, np.full(k - rows.size, rows[0])]).astype(np.int32)
        import jax.numpy as jnp

        sel = jnp.asarray(rows)
        return sel, self.render(scenario_idx[sel], poses[sel], viewmats[sel])
