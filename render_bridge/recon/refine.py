"""Progressive refinement of a reconstruction with the diffusion restorer (ReconDreamer's
"progressive data update").

    refined, report = refine(scene, capture, restorer, RefineConfig(offsets=(1, 2, 3)), work_dir="runs/refine3")

Round r (one per entry of `offsets`, d_r m): render the current scene along novel
trajectories, the logged training poses (every `frame_stride`-th) shifted by +d_r and
-d_r and, in the last round when `cousins` > 0, along CTG cousin trajectories (lane
changes / in-lane offsets, `evaluate.cousin_trajectories`); restore every camera image
with the restorer; add them as pseudo-observations of weight `weight` (one
`extra_views` entry per trajectory set); continue optimising the Gaussians on the
logged frames plus all pseudo-observations gathered so far for `iterations` steps.
Renders of round r come from the scene refined in round r-1, so each round starts from
views that are already closer to correct.

Each round *continues* the scene's own fit (`fit(..., init=scene, init_state=checkpoint)`,
see `fit`'s docstring): from step N (the plain fit's) to N + (r + 1) x iterations, with
the fit's Adam moments, its frame sequence and its final learning rates, no densification
and no opacity reset. Without pseudo-views a refinement therefore equals a plain fit of
N + R x iterations steps. (Restarting the optimiser instead - fresh Adam moments, the means'
rate back near its initial value, gsplat densification every few steps of a short round -
cost 3.5 dB at 0 m on the H200 in the control.) Pass the plain fit's last checkpoint as
`state`; without it the first round starts with zero Adam moments.

weight = 0 is the control (restorer may be None): the same rounds of fitting on the logged
frames alone, to tell the pseudo-views' effect from that of the extra fit steps. The
control and a refinement with pseudo-views run the same code with the same frame
sequence: only the pseudo-views differ.

Resumable: `work_dir/round_R/pseudo.npz` (the restored views), `round_R/fit/` (the
fit's checkpoints) and `round_R/scene.pt` (the round's result) are reused when present.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time

import numpy as np
import torch

from jaxsim.config_utils import check_range
from render_bridge.recon.capture import LoggedCapture
from render_bridge.recon.evaluate import shifted_poses
from render_bridge.recon.fit import FitConfig, fit, fitted_steps, horizon, latest_checkpoint
from render_bridge.recon.model import ReconScene
from render_bridge.recon.pairs import to_uint8


@dataclasses.dataclass(frozen=True)
class RefineConfig:
    """offsets: lateral shift (m) per round; weight: loss weight of each pseudo-view set;
    iterations: fit steps per round (continuing the scene's fit, module docstring);
    lr_means_scale: the means' learning rate relative to the rate the scene's fit ended
    with (1 = the plain continuation); frame_stride: every k-th
    training frame is rendered; cousins: cousin trajectories added in the last round
    (0 = none); restore_steps: DDIM steps (0 = the restorer's default); seed."""

    offsets: tuple = (1.0, 2.0, 3.0)
    weight: float = 0.5
    iterations: int = 600
    lr_means_scale: float = 1.0
    frame_stride: int = 2
    cousins: int = 2
    restore_steps: int = 0
    strength: float = 1.0
    seed: int = 1

    def __post_init__(self):
        object.__setattr__(self, "offsets", tuple(float(d) for d in self.offsets))
        if not self.offsets:
            raise ValueError("RefineConfig.offsets needs at least one round")
        check_range("RefineConfig.weight", self.weight, 0.0)
        check_range("RefineConfig.iterations", self.iterations, 1)
        check_range("RefineConfig.frame_stride", self.frame_stride, 1)
        check_range("RefineConfig.cousins", self.cousins, 0)
        check_range("RefineConfig.strength", self.strength, 1e-3, 1.0)
        check_range("RefineConfig.lr_means_scale", self.lr_means_scale, 0.0)


def restore_views(restorer, images: torch.Tensor, seed: int, steps: int = 0, strength: float = 1.0) -> torch.Tensor:
    """Restore renders (V, C, H, W, 3) float [0, 1] camera image by camera image -> same shape, float."""
    v, c = images.shape[:2]
    flat = images.reshape((v * c,) + tuple(images.shape[2:]))
    out = restorer.restore(flat.to(restorer.device), seed=seed, steps=steps or None, strength=strength)
    return out.reshape(images.shape).to(images.device)


def novel_trajectories(
    scene: ReconScene, cfg: RefineConfig, round_idx: int, bank=None, scenario_idx: int | None = None
):
    """[(name, ego_poses (V, 3), actor_poses (V, 1 + A, 4))] for round `round_idx` (module docstring)."""
    tl = scene.timeline
    frames = np.asarray(tl.get("train_frames", np.arange(len(tl["ego_poses"]))), np.int64)[:: cfg.frame_stride]
    ego = np.asarray(tl["ego_poses"], np.float32)[frames]
    poses = np.asarray(tl["actor_poses"], np.float32)[frames]
    d = cfg.offsets[round_idx]
    out = [(f"shift{d:+g}", shifted_poses(ego, d), poses), (f"shift{-d:+g}", shifted_poses(ego, -d), poses)]
    if cfg.cousins and round_idx == len(cfg.offsets) - 1 and bank is not None and scenario_idx is not None:
        from render_bridge.recon.evaluate import cousin_trajectories

        dt = float(np.asarray(bank.dt[scenario_idx]))
        steps = np.rint(np.asarray(tl["timestamps"], np.float64)[frames] / dt).astype(np.int64)
        for k, c in enumerate(cousin_trajectories(bank, scenario_idx, 4 * cfg.cousins, cfg.seed)[: cfg.cousins]):
            st = c["states"][np.clip(steps, 0, len(c["states"]) - 1)]
            out.append((f"cousin{k}_{c['lateral']}", st[:, :3].astype(np.float32), poses))
    return out


def _pseudo_views(scene, restorer, cfg, r, bank, scenario_idx, path):
    """The round's restored views, loaded from `path` or rendered, restored and saved there."""
    if os.path.exists(path):
        with np.load(path, allow_pickle=False) as z:
            names = [str(n) for n in z["names"]]
            return [(n, z[f"ego_{i}"], z[f"poses_{i}"], z[f"images_{i}"].astype(np.float32) / 255.0, float(z["weight"]))
                    for i, n in enumerate(names)]  # fmt: skip
    views, arrays = [], {}
    for i, (name, ego, poses) in enumerate(novel_trajectories(scene, cfg, r, bank, scenario_idx)):
        render = scene.render(ego, poses)
        restored = to_uint8(
            restore_views(restorer, render, cfg.seed * 1000 + r * 100 + i, cfg.restore_steps, cfg.strength)
        )
        views.append((name, ego, poses, restored.astype(np.float32) / 255.0, cfg.weight))
        arrays.update({f"ego_{i}": ego, f"poses_{i}": poses, f"images_{i}": restored})
    np.savez_compressed(path + ".tmp.npz", names=np.asarray([v[0] for v in views]), weight=cfg.weight, **arrays)
    os.replace(path + ".tmp.npz", path)
    return views


def round_config(base: FitConfig, start: int, cfg: RefineConfig, r: int) -> FitConfig:
    """The fit config of round r: the scene's fit `base` continued from step `start` to the round's
    end, its schedules kept at their original length (so the rates stay at their final values and
    densification stays off), the means' rate x `lr_means_scale`."""
    s = cfg.lr_means_scale
    return dataclasses.replace(base, iterations=start + (r + 1) * cfg.iterations, schedule_steps=horizon(base),
                               lr_means=base.lr_means * s, lr_means_final=base.lr_means_final * s)  # fmt: skip


def refine(scene: ReconScene, capture: LoggedCapture, restorer, cfg: RefineConfig = RefineConfig(), work_dir: str | None = None,
           bank=None, scenario_idx: int | None = None, progress: bool = False, device=None,
           state: str | None = None) -> tuple[ReconScene, dict]:  # fmt: skip
    """Refined scene and a report {"rounds": [{offset, views: {name: count}, weight, seconds}], "seconds"}.
    `bank` / `scenario_idx` enable cousin trajectories (procedural scenes); `state`: the last
    checkpoint of the scene's fit (`fit.latest_checkpoint(its ckpt_dir)`). See the module docstring."""
    if work_dir is None:  # the rounds hand their optimiser state on through checkpoints
        with tempfile.TemporaryDirectory() as tmp:
            scene, report = refine(scene, capture, restorer, cfg, tmp, bank, scenario_idx, progress, device, state)
            report["work_dir"] = None
            return scene, report
    base = FitConfig(**scene.meta["fit"]) if scene.meta.get("fit") else FitConfig()
    start = fitted_steps(scene)
    pseudo, report, t_all = [], {"rounds": [], "config": dataclasses.asdict(cfg), "start_step": start,
                                 "continued_from": state}, time.perf_counter()  # fmt: skip
    for r, d in enumerate(cfg.offsets):
        t0 = time.perf_counter()
        rdir = os.path.join(work_dir, f"round_{r}")
        done = os.path.exists(os.path.join(rdir, "scene.pt"))
        os.makedirs(rdir, exist_ok=True)
        views = _round_views(
            scene, restorer, cfg, r, bank, scenario_idx, rdir
        )  # done rounds: reloaded for later rounds
        pseudo.extend(views)
        extra = [(e, p, im, w) for _, e, p, im, w in pseudo]
        if done:
            scene = ReconScene.load(os.path.join(rdir, "scene.pt"), device=scene.device)
        else:
            scene = fit(capture, round_config(base, start, cfg, r), init=scene, extra_views=extra or None,
                        ckpt_dir=os.path.join(rdir, "fit"), progress=progress, device=device or scene.device, init_state=state)  # fmt: skip
            scene.meta.update(fit=dataclasses.asdict(base), refine_round=r)
            scene.save(os.path.join(rdir, "scene.pt"))
        state = latest_checkpoint(os.path.join(rdir, "fit")) or state
        report["rounds"].append({"offset_m": d, "views": {n: int(len(e)) for n, e, *_ in views}, "weight": cfg.weight,
                                 "pseudo_sets": len(extra), "steps": fitted_steps(scene), "seconds": time.perf_counter() - t0,
                                 "resumed": bool(done)})  # fmt: skip
    report["seconds"] = time.perf_counter() - t_all
    with open(os.path.join(work_dir, "refine.json"), "w") as f:
        json.dump(report, f, indent=1)
    return scene, report


def _round_views(scene, restorer, cfg, r, bank, scenario_idx, rdir):
    if cfg.weight == 0:  # the control: same rounds and steps, no pseudo-views
        return []
    return _pseudo_views(scene, restorer, cfg, r, bank, scenario_idx, os.path.join(rdir, "pseudo.npz"))
