"""The procedural world as ground truth: the true image at any ego pose.

    imgs = render_groundtruth(bank, 3, ego_poses, actor_poses, RigConfig("front", 160, 96))

Images match what the camera env draws for the same poses (`Renderer`: colours clamped
at 0, the default `SkyMap` composited behind the Gaussians, clipped to [0, 1]). With
`return_points=True` the same pass also returns the expected surface point per pixel
(the alpha-weighted mean of the Gaussians' centres), which is what the sparse "LiDAR"
of a capture samples.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from render_bridge import backends, cameras
from render_bridge.procedural_world import WorldConfig, build_actor_templates, build_background, scenario_dicts
from render_bridge.recon.geometry import view_matrices
from render_bridge.scene import GaussianSet, SceneBank, stack
from render_bridge.sky import SkyMap


@functools.lru_cache(maxsize=16)
def _world_cached(key, bank_ref, scenario_idx: int, world_cfg: WorldConfig) -> SceneBank:
    sc = scenario_dicts(bank_ref.bank)[scenario_idx]
    bg = GaussianSet.from_numpy(build_background(sc, world_cfg))
    actors = GaussianSet.from_numpy(build_actor_templates(sc, world_cfg))
    return SceneBank(stack([bg]), actors.map(lambda t: t[None]))


class _BankRef:
    """Hashable by the identity of the bank (the lru_cache key holds the scenario id too)."""

    def __init__(self, bank):
        self.bank = bank

    def __hash__(self):
        return id(self.bank)

    def __eq__(self, other):
        return isinstance(other, _BankRef) and other.bank is self.bank


def world_scene(bank, scenario_idx: int, world_cfg: WorldConfig = WorldConfig(), device=None) -> SceneBank:
    """One-scenario `SceneBank` (1 scene) of the procedural world, cached per (bank, scenario, config)."""
    n = int(bank.ego_traj.shape[0])
    if not 0 <= scenario_idx < n:
        raise ValueError(f"scenario_idx {scenario_idx} is outside the bank's 0..{n - 1}")
    sid = int(bank.scenario_id[scenario_idx])
    return _world_cached(sid, _BankRef(bank), int(scenario_idx), world_cfg).to(device)


def rasterize_fn(backend: str, device: torch.device):
    name = backends.resolve(backend)
    if name == "gsplat" and device.type != "cuda":
        name = "reference"
    return backends.get(name)


@torch.no_grad()
def render_groundtruth(bank, scenario_idx: int, ego_poses, actor_poses, rig: cameras.RigConfig,
                       world_cfg: WorldConfig = WorldConfig(), backend: str = "auto", device=None,
                       return_points: bool = False, chunk: int = 8):  # fmt: skip
    """True images (V, C, H, W, 3) float32 in [0, 1] (torch, on `device`) at ego poses (V, 3)
    [x, y, yaw] with actors posed by actor_poses (V, 1 + A, 4).

    return_points: also return surface points (V, C, H, W, 3) world m and alpha (V, C, H, W).
    """
    device = (
        torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    )
    ego = torch.as_tensor(
        np.array(ego_poses, np.float32) if not torch.is_tensor(ego_poses) else ego_poses,
        dtype=torch.float32,
        device=device,
    )
    poses = torch.as_tensor(
        np.array(actor_poses, np.float32) if not torch.is_tensor(actor_poses) else actor_poses,
        dtype=torch.float32,
        device=device,
    )
    if ego.ndim != 2 or ego.shape[1] != 3:
        raise ValueError(f"ego_poses must be (V, 3) [x, y, yaw], got {tuple(ego.shape)}")
    if poses.ndim != 3 or poses.shape[0] != ego.shape[0] or poses.shape[2] != 4:
        raise ValueError(f"actor_poses must be (V, 1 + A, 4) with V = {ego.shape[0]}, got {tuple(poses.shape)}")
    world = world_scene(bank, scenario_idx, world_cfg, device)
    if poses.shape[1] != world.actors.means.shape[1]:
        raise ValueError(f"actor_poses has {poses.shape[1]} slots, the scenario has {world.actors.means.shape[1]}")
    raster = rasterize_fn(backend, device)
    Ks = torch.as_tensor(cameras.intrinsics(rig), device=device)
    c2e = torch.as_tensor(cameras.camera_to_ego(rig), device=device)
    sky = SkyMap(device=device)
    v, c, h, w = ego.shape[0], rig.num_cameras, rig.height, rig.width
    images = torch.empty((v, c, h, w, 3), device=device)
    points = torch.empty((v, c, h, w, 3), device=device) if return_points else None
    alphas = torch.empty((v, c, h, w), device=device) if return_points else None
    for s in range(0, v, chunk):
        e = min(s + chunk, v)
        g = world.compose(torch.zeros(e - s, dtype=torch.int64, device=device), poses[s:e])
        colors = g.colors.clamp_min(0.0)
        if return_points:
            colors = torch.cat([colors, g.means], -1)
        views = view_matrices(ego[s:e], c2e)
        out, alpha = raster(g.means, g.quats, g.scales, g.opacities, colors, views, Ks[None].expand(e - s, c, 3, 3),
                            w, h, near=rig.near, far=rig.far)  # fmt: skip
        rgb = out[..., :3] + (1.0 - alpha) * sky.background(views, Ks, w, h)
        images[s:e] = rgb.clamp(0.0, 1.0)
        if return_points:
            points[s:e] = out[..., 3:6] / alpha.clamp_min(1e-6)
            alphas[s:e] = alpha[..., 0]
    return (images, points, alphas) if return_points else images
