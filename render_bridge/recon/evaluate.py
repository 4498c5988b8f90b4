"""Novel-view quality of a reconstruction against the procedural ground truth.

    table = novel_view_table(scene, bank, scenario_idx, offsets=(0, 1, 2, 3), cousins=True, out_dir="eval/")

Views: the held-out logged timestamps (offset 0 m: poses the car drove but frames the
fit never saw), the same timestamps with the whole trajectory shifted laterally by
+-d m in the ego frame (both sides, averaged; per side too), and CTG cousin trajectories
(lane changes and in-lane offsets of the expert route, `jaxsim.ctg`) at logged
timestamps where the cousin has left the logged path by >= 0.5 m. Actors are posed by
the log at each timestamp. Per view PSNR / SSIM
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


_SAMPLE = None


def cousin_trajectories(bank, scenario_idx: int, num_cousins: int = 8, seed: int = 0) -> list[dict]:
    """Accepted CTG cousins of the scenario that leave the logged path laterally (lane
    changes, in-lane offsets): [{"states": (T, 4) [x, y, yaw, speed], "lateral": name}]."""
    import jax

    from jaxsim.ctg import CTGConfig, Lateral, sample_cousins
    from jaxsim.env import DrivingEnv, EnvConfig

    global _SAMPLE
    if _SAMPLE is None:  # compiled once per bank shape, reused across scenes
        _SAMPLE = jax.jit(sample_cousins, static_argnames=("cfg", "batched_params", "chunk"))
    params = DrivingEnv(EnvConfig(obs="none")).default_params(bank)
    cfg = CTGConfig(num_cousins=num_cousins, include_expert=False)
    c = _SAMPLE(jax.random.PRNGKey(seed), params, jax.numpy.asarray([scenario_idx], jax.numpy.int32), cfg)
    acc, lat, route = np.asarray(c.accepted[0]), np.asarray(c.lateral[0]), np.asarray(c.route[0])
    return [
        {"states": route[k], "lateral": Lateral(int(lat[k])).name}
        for k in range(len(acc))
        if acc[k] and lat[k] != Lateral.NONE
    ]


def _score(scene, bank, scenario_idx, ego, poses, world_cfg, backend):
    pred = scene.render(ego, poses, backend=backend)
    gt = render_groundtruth(bank, scenario_idx, ego, poses, _scene_rig(scene), world_cfg, backend, scene.device)
    return pred, gt, psnr_per_image(pred, gt).flatten(), ssim_per_image(pred, gt).flatten()


def _scene_rig(scene: ReconScene):
    from render_bridge.recon.capture import rig_from_calibration

    c = scene.calib
    return rig_from_calibration(c["names"], c["Ks"], c["cam_to_ego"], c["width"], c["height"])


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
                     num_cousins: int = 8, max_cousins: int = 2, min_deviation: float = 0.5, max_views: int = 8,
                     seed: int = 0) -> dict:  # fmt: skip
    """PSNR / SSIM of `scene` against the ground truth (module docstring) -> JSON-able dict:
    {"scenario_idx", "frames", "offsets": {"0": {psnr, ssim, psnr_min, views, [psnr_left, psnr_right]}, ...},
     "cousins": {psnr, ssim, views, lateral: [...], mean_deviation_m} (if cousins)}; `views` counts
    scored camera images (poses x cameras x sides)."""
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
        table["cousins"] = _cousin_row(scene, bank, scenario_idx, world_cfg, backend, out_dir, num_cousins, max_cousins,
                                       min_deviation, max_views, seed)  # fmt: skip
    return table


def _cousin_row(scene, bank, scenario_idx, world_cfg, backend, out_dir, num_cousins, max_cousins, min_deviation,
                max_views, seed) -> dict:  # fmt: skip
    """Views along up to `max_cousins` cousins: the logged timestamps (all frames of the
    capture, trained or not) where the cousin is >= `min_deviation` m from the logged
    path, evenly subsampled to `max_views` per cousin; actors at their logged poses."""
    tl = scene.timeline
    ego_all, poses_all = np.asarray(tl["ego_poses"], np.float32), np.asarray(tl["actor_poses"], np.float32)
    dt = float(np.asarray(bank.dt[scenario_idx]))
    steps = np.rint(np.asarray(tl["timestamps"], np.float64) / dt).astype(np.int64)
    ps, ss, lat, dist = [], [], [], []
    for c in cousin_trajectories(bank, scenario_idx, num_cousins, seed):
        st = c["states"][np.clip(steps, 0, len(c["states"]) - 1)]
        dev = np.linalg.norm(st[:, :2] - ego_all[:, :2], axis=1)
        far = np.nonzero(dev >= min_deviation)[0]
        if far.size == 0:
            continue
        pick = far[np.unique(np.linspace(0, far.size - 1, min(max_views, far.size)).round().astype(int))]
        pred, gt, p, s = _score(scene, bank, scenario_idx, st[pick, :3], poses_all[pick], world_cfg, backend)
        if out_dir and not ps:
            save_grid(os.path.join(out_dir, "grid_cousins.png"), gt, pred)
        ps.append(p)
        ss.append(s)
        lat.append(c["lateral"])
        dist.append(float(dev[pick].mean()))
        if len(ps) == max_cousins:
            break
    row = _row(ps, ss, sum(len(p) for p in ps)) if ps else {"views": 0}
    return {**row, "lateral": lat, "mean_deviation_m": float(np.mean(dist)) if dist else 0.0}


scene_rig = _scene_rig  # public name: the `RigConfig` of a scene's capture calibration
