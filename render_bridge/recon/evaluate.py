"""Novel-view quality of a reconstruction against the procedural ground truth.

    table = novel_view_table(scene, bank, scenario_idx, offsets=(0, 1, 2, 3), cousins=True, out_dir="eval/")

Views: the held-out logged timestamps (offset 0 m: poses the car drove but frames the
fit never saw), the same timestamps with the whole trajectory shifted laterally by
+-d m in the ego frame (both sides, averaged; per side too), and CTG cousin trajectories
(lane changes and in-lane offsets of the expert route, `jaxsim.ctg`) at the same
timestamps. Actors are posed by the log at each timestamp. Per view PSNR / SSIM
(`metrics`) are averaged; `out_dir` gets one PNG grid per row of the table (ground
truth | reconstruction | 4 x |error|, first camera, up to 4 views).
"""
from __future__ import annotations

import os

import numpy as np
import torch

from render_bridge.procedural_world import WorldConfig
from render_bridge.recon.groundtruth import render_groundtruth
from render_bridge.recon.metrics import psnr_per_image, ssim_per_image
from render_bridge.recon.model import ReconScene


def shifted_poses(ego_poses, offset_m: float):
    """Ego poses (V, 3) [x, y, yaw] moved `offset_m` m along each pose's left (+y of the ego
    frame; negative = right). numpy in -> numpy out, torch in -> torch out."""
    if torch.is_tensor(ego_poses):
        x, y, yaw = ego_poses.unbind(-1)
        return torch.stack([x - torch.sin(yaw) * offset_m, y + torch.cos(yaw) * offset_m, yaw], -1)
    e = np.asarray(ego_poses, np.float32)
    return np.stack([e[..., 0] - np.sin(e[..., 2]) * offset_m, e[..., 1] + np.cos(e[..., 2]) * offset_m, e[..., 2]], -1)


def cousin_trajectories(bank, scenario_idx: int, num_cousins: int = 8, seed: int = 0) -> list[dict]:
    """Accepted CTG cousins of the scenario that leave the logged path laterally (lane
    changes, in-lane offsets): [{"states": (T, 4) [x, y, yaw, speed], "lateral": name}]."""
    import jax

    from jaxsim.ctg import CTGConfig, Lateral, sample_cousins
    from jaxsim.env import DrivingEnv, EnvConfig

    params = DrivingEnv(EnvConfig(obs="none")).default_params(bank)
    cfg = CTGConfig(num_cousins=num_cousins, include_expert=False)
    c = sample_cousins(jax.random.PRNGKey(seed), params, jax.numpy.asarray([scenario_idx], jax.numpy.int32), cfg)
    acc, lat, route = np.asarray(c.accepted[0]), np.asarray(c.lateral[0]), np.asarray(c.route[0])
    return [{"states": route[k], "lateral": Lateral(int(lat[k])).name} for k in range(len(acc)) if acc[k] and lat[k] != Lateral.NONE]


def _score(scene, bank, scenario_idx, ego, poses, world_cfg, backend):
    pred = scene.render(ego, poses, backend=backend)
    gt = render_groundtruth(bank, scenario_idx, ego, poses, _scene_rig(scene), world_cfg, backend, scene.device)
    return pred, gt, psnr_per_image(pred, gt).flatten(), ssim_per_image(pred, gt).flatten()


def _scene_rig(scene: ReconScene):
    from render_bridge.recon.capture import LoggedCapture

    c = scene.calib
    probe = LoggedCapture.__new__(LoggedCapture)  # only the calibration is needed for `rig`
    probe.__dict__.update(images=np.zeros((1, len(c["names"]), int(c["height"]), int(c["width"]), 3), np.uint8),
                          Ks=np.asarray(c["Ks"], np.float32), cam_to_ego=np.asarray(c["cam_to_ego"], np.float32),
                          camera_names=tuple(c["names"]))  # fmt: skip
    return LoggedCapture.rig.fget(probe)


def save_grid(path: str, gt: torch.Tensor, pred: torch.Tensor, max_views: int = 4) -> None:
    """PNG: one row per view (first camera): ground truth | reconstruction | 4 x |error|."""
    from PIL import Image

    g, p = gt[:max_views, 0].cpu().numpy(), pred[:max_views, 0].cpu().numpy()
    err = np.clip(4.0 * np.abs(g - p), 0, 1)
    rows = [np.concatenate([a, b, e], 1) for a, b, e in zip(g, p, err)]
    Image.fromarray((np.concatenate(rows, 0) * 255 + 0.5).astype(np.uint8)).save(path)


def _row(psnrs, ssims, n_views) -> dict:
    p, s = torch.cat(psnrs), torch.cat(ssims)
    return {"psnr": float(p.mean()), "ssim": float(s.mean()), "psnr_min": float(p.min()), "views": int(n_views)}


def novel_view_table(scene: ReconScene, bank, scenario_idx: int, offsets=(0, 1, 2, 3), cousins: bool = True,
                     frames=None, world_cfg: WorldConfig | None = None, backend: str = "auto", out_dir: str | None = None,
                     num_cousins: int = 8, max_cousins: int = 2, seed: int = 0) -> dict:  # fmt: skip
    """PSNR / SSIM of `scene` against the ground truth (module docstring) -> JSON-able dict:
    {"scenario_idx", "frames", "offsets": {"0": {psnr, ssim, psnr_min, views, [psnr_left, psnr_right]}, ...},
     "cousins": {psnr, ssim, views, lateral: [...]} (if cousins)}."""
    tl = scene.timeline
    frames = np.asarray(tl["val_frames"] if frames is None else frames, np.int64)
    if frames.size == 0:
        raise ValueError("no frames to evaluate (the fit held out none: FitConfig.holdout_every = 0)")
    if world_cfg is None:
        world_cfg = WorldConfig(**scene.meta["world"]) if scene.meta.get("world") else WorldConfig()
    ego, poses = np.asarray(tl["ego_poses"], np.float32)[frames], np.asarray(tl["actor_poses"], np.float32)[frames]
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    table = {"scenario_idx": int(scenario_idx), "frames": frames.tolist(), "offsets": {}}
    for d in offsets:
        sides = [0.0] if d == 0 else [float(d), -float(d)]
        ps, ss, per_side = [], [], {}
        for side in sides:
            pred, gt, p, s = _score(scene, bank, scenario_idx, shifted_poses(ego, side), poses, world_cfg, backend)
            ps.append(p)
            ss.append(s)
            if d != 0:
                per_side["psnr_left" if side > 0 else "psnr_right"] = float(p.mean())
            if out_dir and side >= 0:
                save_grid(os.path.join(out_dir, f"grid_offset_{d}m.png"), gt, pred)
        table["offsets"][str(d)] = {**_row(ps, ss, sum(len(p) for p in ps)), **per_side}
    if cousins:
        dt = float(np.asarray(bank.dt[scenario_idx]))
        steps = np.rint(np.asarray(tl["timestamps"], np.float64)[frames] / dt).astype(np.int64)
        found = cousin_trajectories(bank, scenario_idx, num_cousins, seed)[:max_cousins]
        ps, ss, lat, dist = [], [], [], []
        for k, c in enumerate(found):
            st = c["states"][np.clip(steps, 0, len(c["states"]) - 1)]
            pred, gt, p, s = _score(scene, bank, scenario_idx, st[:, :3], poses, world_cfg, backend)
            ps.append(p)
            ss.append(s)
            lat.append(c["lateral"])
            dist.append(float(np.linalg.norm(st[:, :2] - ego[:, :2], axis=1).mean()))
            if out_dir and k == 0:
                save_grid(os.path.join(out_dir, "grid_cousins.png"), gt, pred)
        table["cousins"] = {**(_row(ps, ss, sum(len(p) for p in ps)) if ps else {"views": 0}), "lateral": lat,
                            "mean_distance_m": float(np.mean(dist)) if dist else 0.0}  # fmt: skip
    return table
