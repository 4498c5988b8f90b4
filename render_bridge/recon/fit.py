"""Fit a `ReconScene` to a capture's logged frames (street-Gaussians style).

    scene = fit(capture, FitConfig(iterations=2000), ckpt_dir="runs/fit3")

One training frame per step (all its cameras); loss (1 - w) L1 + w (1 - SSIM) with
w = `ssim_weight`; Adam per parameter group, the means' learning rate decaying
exponentially. On CUDA with gsplat: gsplat's differentiable `rasterization` and its
`DefaultStrategy` (clone / split / prune). On the CPU: the reference splatter with
autograd and no densification (tiny scenes, tests). Frames `capture.split(holdout_every)`
holds out are never trained on; their mean PSNR ends up in `scene.meta["val_psnr"]`.
`extra_views` are pseudo-observations [(ego_poses (V, 3), actor_poses (V, 1 + A, 4),
images (V, C, H, W, 3) float, weight)]: from step `extra_start` on, each step also
renders one of them and adds weight x its photometric loss (the diffusion restorer's
progressive refinement feeds these).

Checkpoints (`ckpt_dir/ckpt_STEP.pt`: Gaussians, optimiser and strategy state, sky) are
written every `ckpt_every` steps and a fit resumes from the latest. A non-finite loss
stops the fit with `FitDiverged`, naming the step and the last good checkpoint (kept).

Continuing a fit (what refinement does): `fit(cap, replace(cfg, iterations=N + k,
schedule_steps=N), init=scene, init_state=its last checkpoint)` runs steps N..N+k-1 exactly as
a fit of N + k steps would: same Gaussians, Adam moments, sky, densification state, frame
sequence (seeded by (seed, step)) and learning rates (the means' rate stays at its final
value after `schedule_steps`, densification stays off after refine_stop_frac x
schedule_steps). Without `init_state` the optimiser moments start from zero.
"""

from __future__ import annotations

import dataclasses
import glob
import math
import os
import sys
import time

import numpy as np
import torch

from jaxsim.config_utils import check_choice, check_range
from render_bridge.recon import raster
from render_bridge.recon.capture import LoggedCapture, images_float
from render_bridge.recon.init import init_params
from render_bridge.recon.metrics import psnr_per_image, ssim_torch
from render_bridge.recon.model import PARAMS, ReconScene, render_frame
from render_bridge.recon.sky_nvdiffrast import CubeSky


class FitDiverged(RuntimeError):
    """The loss became non-finite; `step` and `checkpoint` (last good one, or None) are attributes."""

    def __init__(self, step: int, loss: float, checkpoint: str | None):
        self.step, self.loss, self.checkpoint = step, loss, checkpoint
        kept = f"last good checkpoint kept: {checkpoint}" if checkpoint else "no checkpoint was written yet"
        super().__init__(f"fit diverged: loss {loss} at step {step}; {kept}")


@dataclasses.dataclass(frozen=True)
class FitConfig:
    """Fit settings (hashable). Learning rates as in 3DGS (means: x scene scale, decaying
    to lr_means_final); colours and opacities are logits, scales logs. schedule_steps: length
    of the means' decay and of the densification window (0 = iterations); a longer
    `iterations` continues past it at the final rates (module docstring)."""

    iterations: int = 2000
    holdout_every: int = 5
    ssim_weight: float = 0.2
    lr_means: float = 1.6e-4
    lr_means_final: float = 1.6e-6
    lr_scales: float = 5e-3
    lr_quats: float = 1e-3
    lr_opacities: float = 5e-2
    lr_colors: float = 2.5e-2
    lr_sky: float = 2e-2
    init_opacity: float = 0.5
    max_points: int = 60000
    sky_resolution: int = 32
    sky_backend: str = "auto"
    backend: str = "auto"
    densify: bool = True
    refine_start: int = 200
    refine_stop_frac: float = 0.75
    refine_every: int = 100
    grow_grad2d: float = 2e-4
    ckpt_every: int = 500
    keep_checkpoints: int = 2
    extra_start: int = 0
    schedule_steps: int = 0
    seed: int = 0

    def __post_init__(self):
        check_range("iterations", self.iterations, 1, 10_000_000)
        check_range("holdout_every", self.holdout_every, 0, 1000)
        check_range("ssim_weight", self.ssim_weight, 0.0, 1.0)
        check_range("max_points", self.max_points, 1, 50_000_000)
        check_range("sky_resolution", self.sky_resolution, 2, 4096)
        check_range("ckpt_every", self.ckpt_every, 1, 10_000_000)
        check_range("refine_stop_frac", self.refine_stop_frac, 0.0, 1.0)
        check_range("schedule_steps", self.schedule_steps, 0, 10_000_000)
        check_choice("backend", self.backend, ("auto", "gsplat", "reference"))
        check_choice("sky_backend", self.sky_backend, ("auto", "torch", "nvdiffrast"))


def photometric(pred: torch.Tensor, target: torch.Tensor, ssim_weight: float) -> torch.Tensor:
    """(1 - w) L1 + w (1 - SSIM) of images (..., H, W, 3)."""
    l1 = (pred - target).abs().mean()
    return l1 if ssim_weight == 0 else (1 - ssim_weight) * l1 + ssim_weight * (1 - ssim_torch(pred, target))


def scene_scale(cap: LoggedCapture) -> float:
    """Spatial extent (m) of the drive: 1.1 x the largest distance of an ego pose from their mean (>= 10)."""
    xy = cap.ego_poses[:, :2]
    return max(10.0, 1.1 * float(np.linalg.norm(xy - xy.mean(0), axis=1).max()))


def _optimizers(params, cfg: FitConfig, scale: float) -> dict:
    lrs = {"means": cfg.lr_means * scale, "scales": cfg.lr_scales, "quats": cfg.lr_quats,
           "opacities": cfg.lr_opacities, "colors": cfg.lr_colors}  # fmt: skip
    return {k: torch.optim.Adam([params[k]], lr=lr, eps=1e-15) for k, lr in lrs.items()}


def horizon(cfg: FitConfig) -> int:
    """Steps of the learning-rate decay and densification schedules (`schedule_steps` or `iterations`)."""
    return cfg.schedule_steps or cfg.iterations


def fitted_steps(scene: ReconScene) -> int:
    """Optimisation steps behind `scene` (scenes saved before meta["step"] existed: their fit's iterations)."""
    return int(scene.meta.get("step", (scene.meta.get("fit") or {}).get("iterations", 0)))


def _strategy(cfg: FitConfig, backend: str):
    if not cfg.densify or backend != "gsplat":
        return None
    from gsplat.strategy import DefaultStrategy

    # the opacity reset never fires (reset_every > iterations): resetting a fitted scene's opacities
    # costs more steps to recover than a continuation has
    return DefaultStrategy(refine_start_iter=cfg.refine_start, refine_stop_iter=int(cfg.refine_stop_frac * horizon(cfg)),
                           refine_every=cfg.refine_every, reset_every=10 * cfg.iterations + 1, grow_grad2d=cfg.grow_grad2d,
                           verbose=False)  # fmt: skip


def latest_checkpoint(ckpt_dir: str | None) -> str | None:
    if not ckpt_dir:
        return None
    found = sorted(glob.glob(os.path.join(ckpt_dir, "ckpt_*.pt")))
    return found[-1] if found else None


def _save_ckpt(ckpt_dir, step, params, optimizers, sky, sky_opt, sstate, scale, keep) -> str:
    os.makedirs(ckpt_dir, exist_ok=True)
    path = os.path.join(ckpt_dir, f"ckpt_{step:07d}.pt")
    strat = {k: (v.detach().cpu() if torch.is_tensor(v) else v) for k, v in (sstate or {}).items()}
    torch.save({"step": step, "params": {k: v.detach().cpu() for k, v in params.items()},
                "optim": {k: o.state_dict() for k, o in optimizers.items()}, "sky": sky.logits.detach().cpu(),
                "sky_optim": sky_opt.state_dict(), "strategy": strat, "scene_scale": scale}, path + ".tmp")  # fmt: skip
    os.replace(path + ".tmp", path)
    for old in sorted(glob.glob(os.path.join(ckpt_dir, "ckpt_*.pt")))[:-keep]:
        os.remove(old)
    return path


class _Progress:
    def __init__(self, total: int, enabled: bool, start: int):
        self.total, self.enabled, self.t0, self.start = total, enabled, time.perf_counter(), start
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, initial=start, desc="[recon fit]", unit="it", file=sys.stderr, leave=True)
            except ImportError:
                pass

    def update(self, step: int, loss: float, n: int):
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(1)
            if step % 20 == 0:
                self.bar.set_postfix(loss=f"{loss:.4f}", gaussians=n)
        elif step % 50 == 0 or step + 1 == self.total:
            rate = (step + 1 - self.start) / max(time.perf_counter() - self.t0, 1e-9)
            sys.stderr.write(
                f"\r[recon fit] {step + 1}/{self.total}  {rate:.1f} it/s  loss={loss:.4f}  gaussians={n}".ljust(100)
            )
            sys.stderr.flush()

    def close(self):
        if self.bar is not None:
            self.bar.close()
        elif self.enabled:
            sys.stderr.write("\n")


def _check_extra(extra_views, cap: LoggedCapture):
    out = []
    c, h, w = cap.images.shape[1:4]
    for i, view in enumerate(extra_views or []):
        if len(view) != 4:
            raise ValueError(f"extra_views[{i}] must be (ego_poses, actor_poses, images, weight)")
        ego, poses, imgs, weight = view
        ego, poses, imgs = (
            torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x, dtype=torch.float32)
            for x in (ego, poses, imgs)
        )
        v = ego.shape[0]
        if ego.shape != (v, 3) or poses.shape != (v,) + cap.actor_poses.shape[1:] or imgs.shape != (v, c, h, w, 3):
            raise ValueError(f"extra_views[{i}]: need ego_poses (V, 3), actor_poses (V, {cap.actor_poses.shape[1]}, 4), "
                             f"images (V, {c}, {h}, {w}, 3); got {tuple(ego.shape)}, {tuple(poses.shape)}, {tuple(imgs.shape)}")  # fmt: skip
        out.append((ego, poses, imgs, float(weight)))
    return out


@torch.no_grad()
def _validate(params, sky, images, ego, poses, Ks, c2e, w, h, backend, frames) -> float | None:
    """Mean PSNR (dB) over the held-out logged frames (None when none are held out)."""
    if len(frames) == 0:
        return None
    vals = []
    for f in frames:
        rgb, _, _ = render_frame(params, sky, ego[f], poses[f], Ks, c2e, w, h, backend=backend)
        vals.append(psnr_per_image(rgb.clamp(0, 1), images[f]))
    return float(torch.cat(vals).mean())


def fit(capture: LoggedCapture, cfg: FitConfig = FitConfig(), init: ReconScene | None = None, extra_views=None,
        ckpt_dir: str | None = None, progress: bool = True, device=None, init_state: str | None = None) -> ReconScene:  # fmt: skip
    """Fit a `ReconScene` to `capture`, or with `init` continue one from its step `fitted_steps(init)`
    to `cfg.iterations`; `init_state`: a checkpoint of that fit (optimiser moments, densification
    state) to continue from when `ckpt_dir` holds none of its own (module docstring)."""
    device = (
        torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    )
    backend = raster.resolve(cfg.backend, device)
    extras = [tuple(t.to(device) if torch.is_tensor(t) else t for t in e) for e in _check_extra(extra_views, capture)]
    train_idx, val_idx = capture.split(cfg.holdout_every)
    images = images_float(capture, device)
    ego = torch.as_tensor(capture.ego_poses, device=device)
    poses = torch.as_tensor(capture.actor_poses, device=device)
    Ks, c2e = torch.as_tensor(capture.Ks, device=device), torch.as_tensor(capture.cam_to_ego, device=device)
    w, h = capture.size
    scale = scene_scale(capture)
    start = 0
    if init is not None:
        raw = {k: v.detach().clone().to(device) for k, v in init.params.items()}
        sky_logits, start = init.sky.logits.detach().clone(), fitted_steps(init)
    else:
        raw = init_params(capture, cfg.max_points, cfg.init_opacity, cfg.seed, device)
        sky_logits = None
    params = torch.nn.ParameterDict(
        {k: torch.nn.Parameter(raw[k].contiguous(), requires_grad=k != "actor") for k in PARAMS}
    )
    sky = CubeSky(
        cfg.sky_resolution if sky_logits is None else sky_logits.shape[1], backend=cfg.sky_backend, device=device
    )
    if sky_logits is not None:
        sky.logits.data.copy_(sky_logits.to(device))
    resume = latest_checkpoint(ckpt_dir) or init_state
    strategy, sstate = _strategy(cfg, backend), None
    if resume:
        ck = torch.load(resume, map_location=device, weights_only=True)
        if init is not None and resume == init_state and ck["params"]["means"].shape[0] != init.num_gaussians:
            raise ValueError(f"init_state {resume}: {ck['params']['means'].shape[0]} Gaussians, the init scene has "
                             f"{init.num_gaussians}: not a checkpoint of that scene's fit")  # fmt: skip
        start, scale = int(ck["step"]), float(ck["scene_scale"])
        params = torch.nn.ParameterDict(
            {k: torch.nn.Parameter(ck["params"][k].to(device), requires_grad=k != "actor") for k in PARAMS}
        )
        sky.logits.data.copy_(ck["sky"].to(device))
    optimizers = _optimizers(params, cfg, scale)
    sky_opt = torch.optim.Adam(sky.parameters(), lr=cfg.lr_sky, eps=1e-15)
    if strategy is not None:
        strategy.check_sanity(params, optimizers)
        sstate = strategy.initialize_state(scene_scale=scale)
    if resume:
        for k, o in optimizers.items():
            lr = o.param_groups[0]["lr"]
            o.load_state_dict(ck["optim"][k])
            o.param_groups[0]["lr"] = (
                lr  # the moments continue; the rates are this config's (load_state_dict restores the saved ones)
            )
        sky_opt.load_state_dict(ck["sky_optim"])
        sky_opt.param_groups[0]["lr"] = cfg.lr_sky
        if sstate is not None:
            sstate.update({k: (v.to(device) if torch.is_tensor(v) else v) for k, v in ck["strategy"].items()})
    span = horizon(cfg)
    decay = (cfg.lr_means_final / cfg.lr_means) ** (1.0 / max(span, 1))
    last_good, loss_v, t0 = resume, float("nan"), time.perf_counter()
    bar = _Progress(cfg.iterations, progress, start)
    try:
        for step in range(start, cfg.iterations):
            rng = np.random.default_rng((cfg.seed, step))
            optimizers["means"].param_groups[0]["lr"] = cfg.lr_means * scale * decay ** min(step, span)
            f = int(train_idx[rng.integers(len(train_idx))])
            rgb, _, info = render_frame(params, sky, ego[f], poses[f], Ks, c2e, w, h, backend=backend)
            if (
                strategy is not None
            ):  # gsplat counts from 0 and resets opacities when step % reset_every == 0: pass step + 1
                strategy.step_pre_backward(params, optimizers, sstate, step + 1, info)
            loss = photometric(rgb, images[f], cfg.ssim_weight)
            if extras and step >= cfg.extra_start:
                e_ego, e_poses, e_imgs, weight = extras[rng.integers(len(extras))]
                j = int(rng.integers(e_ego.shape[0]))
                rgb2, _, _ = render_frame(params, sky, e_ego[j], e_poses[j], Ks, c2e, w, h, backend=backend)
                loss = loss + weight * photometric(rgb2, e_imgs[j], cfg.ssim_weight)
            loss_v = float(loss.detach())
            if not math.isfinite(loss_v):
                raise FitDiverged(step, loss_v, last_good)
            loss.backward()
            for o in list(optimizers.values()) + [sky_opt]:
                o.step()
                o.zero_grad(set_to_none=True)
            if strategy is not None:
                strategy.step_post_backward(params, optimizers, sstate, step + 1, info, packed=False)
            if ckpt_dir and ((step + 1) % cfg.ckpt_every == 0 or step + 1 == cfg.iterations):
                last_good = _save_ckpt(
                    ckpt_dir, step + 1, params, optimizers, sky, sky_opt, sstate, scale, cfg.keep_checkpoints
                )
            bar.update(step, loss_v, params["means"].shape[0])
    finally:
        bar.close()
    val_psnr = _validate(params, sky, images, ego, poses, Ks, c2e, w, h, backend, val_idx)
    calib = {"Ks": capture.Ks, "cam_to_ego": capture.cam_to_ego, "names": list(capture.camera_names),
             "width": w, "height": h}  # fmt: skip
    timeline = {"ego_poses": capture.ego_poses, "actor_poses": capture.actor_poses, "timestamps": capture.timestamps,
                "actor_sizes": capture.actor_sizes, "val_frames": val_idx, "train_frames": train_idx}  # fmt: skip
    meta = {**{k: v for k, v in capture.meta.items()}, "fit": dataclasses.asdict(cfg), "backend": backend,
            "sky_backend": sky.active_backend(), "fit_seconds": time.perf_counter() - t0, "final_loss": loss_v,
            "start_step": start, "step": max(start, cfg.iterations), "val_psnr": val_psnr}  # fmt: skip
    return ReconScene({k: v.detach() for k, v in params.items()}, sky, calib, timeline, meta)
