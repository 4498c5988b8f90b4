"""Reconstruction benchmark: fit time, Gaussians per scene, the novel-view table on
held-out procedural scenes, camera-env render speed (reconstructed vs procedural scene)
and the sky with / without nvdiffrast.

    python -m benchmarks.recon --out OUT/recon [--scenes 8] [--part table|sky|all] [--tiny]

`--part table`: for each of --scenes held-out procedural scenarios: capture the front
camera along the log (default 160x96, 10 Hz), fit (FitConfig defaults; held-out every
5th frame), evaluate at 0 / 1 / 2 / 3 m and along CTG cousins against ground truth
(table.json, per-scene JSON and PNG grids), then step the camera env on the
reconstructed scenes and on the procedural ones. A time budget (--time-budget s) lowers
the fit steps of later scenes if the first fit shows the run would not fit in it (the
JSON records the steps actually used). `--part sky`: cube-map lookup cost and agreement
(nvdiffrast vs torch) and one fit with each sky backend. `--tiny` runs every path at toy
size on the CPU (what the tests call).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

import numpy as np


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.recon", description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="output folder for JSON and PNG results")
    p.add_argument("--part", default="all", choices=("table", "sky", "all"))
    p.add_argument("--scenes", type=int, default=8, help="held-out procedural scenes (default %(default)s)")
    p.add_argument("--iterations", type=int, default=0, help="fit steps (0 = FitConfig default)")
    p.add_argument("--width", type=int, default=160)
    p.add_argument("--height", type=int, default=96)
    p.add_argument("--time-budget", type=float, default=200.0, help="seconds for the table part (default %(default)s)")
    p.add_argument("--env-steps", type=int, default=20, help="camera-env steps timed per scene kind")
    p.add_argument("--no-cousins", action="store_true")
    p.add_argument("--tiny", action="store_true", help="toy sizes on the CPU (tests)")
    return p


def _setup(args):
    import torch

    from jaxsim.procedural import generate_bank
    from render_bridge.cameras import RigConfig
    from render_bridge.procedural_world import WorldConfig
    from render_bridge.recon.fit import FitConfig

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.tiny:
        torch.set_num_threads(1)
        rig, world = RigConfig("front", 32, 24), WorldConfig(target_gaussians=3000, actor_gaussians=32, far_ground=0.0)
        cfg = FitConfig(iterations=args.iterations or 4, max_points=400, ckpt_every=10_000)
        capture_kw = {"max_frames": 12, "stride": 4, "lidar_stride": 4}
    else:
        rig, world, capture_kw = RigConfig("front", args.width, args.height), WorldConfig(), {}
        cfg = FitConfig(iterations=args.iterations) if args.iterations else FitConfig()
    bank = generate_bank(args.scenes, split="heldout", seed=0)
    warmup(device)
    return device, bank, rig, world, cfg, capture_kw


def warmup(device) -> float:
    """One differentiable rasterization (+ backward) so a JIT-compiled gsplat extension is
    built before anything is timed; returns its seconds (0 on the CPU)."""
    import torch

    from render_bridge.recon import raster

    if device.type != "cuda":
        return 0.0
    t0 = time.perf_counter()
    n = 1000
    means = (torch.randn(n, 3, device=device) + torch.tensor([0.0, 0.0, 8.0], device=device)).requires_grad_()
    quats = torch.zeros(n, 4, device=device)
    quats[:, 0] = 1
    K = torch.tensor([[[50.0, 0, 32], [0, 50.0, 32], [0, 0, 1]]], device=device)
    rgb, _, _ = raster.rasterize(means, quats, torch.full((n, 3), 0.1, device=device), torch.full((n,), 0.5, device=device),
                                 torch.rand(n, 3, device=device), torch.eye(4, device=device)[None], K, 64, 64)  # fmt: skip
    rgb.sum().backward()
    torch.cuda.synchronize()
    WARMUP["seconds"] = time.perf_counter() - t0
    WARMUP["backend"] = raster.resolve("auto", device)
    return WARMUP["seconds"]


WARMUP: dict = {}
FAILURES: list = []


def _sync():
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def env_speed(bank, scene_banks: dict, rig, steps: int, device) -> dict:
    """Camera-env frames/s with one env per scene (scenario i on scene i) for each
    {name: (SceneBank, sky)}; one jitted env, its renderer swapped per scene kind."""
    import jax

    from jaxsim.env import DrivingEnv, EnvConfig
    from jaxsim.wrappers import AutoResetWrapper, VmapWrapper
    from render_bridge.camera_env import CameraObsEnv
    from render_bridge.renderer import Renderer

    n = int(bank.ego_traj.shape[0])
    env = VmapWrapper(AutoResetWrapper(DrivingEnv(EnvConfig(obs="none"))), n)
    params = env.default_params(bank)
    cam, out = None, {}
    for name, (scene_bank, sky) in scene_banks.items():
        renderer = Renderer(scene_bank, rig, backend="auto", device=device, sky=sky)
        if cam is None:
            cam = CameraObsEnv(env, renderer)
        cam.renderer = renderer
        key = jax.random.PRNGKey(0)
        obs, state = cam.reset_to(key, params, np.arange(n))
        actions = jax.random.randint(key, (steps + 2, n, 2), 20, 41)
        for k in range(2):  # warm-up (compiles the jitted step once)
            obs, state, *_ = cam.step(jax.random.fold_in(key, k), state, actions[k], params)
        jax.block_until_ready(obs)
        t0 = time.perf_counter()
        for k in range(steps):
            obs, state, *_ = cam.step(jax.random.fold_in(key, 100 + k), state, actions[k + 2], params)
        jax.block_until_ready(obs)
        dt = time.perf_counter() - t0
        img = np.asarray(obs)
        out[name] = {"envs": n, "steps": steps, "seconds": dt, "frames_per_s": n * steps / dt,
                     "image_shape": list(img.shape[1:]), "gaussians_per_env": scene_bank.gaussians_per_env,
                     "mean_pixel": float(img.mean())}  # fmt: skip
    return out


def run_table(args, out: str) -> dict:
    import jax
    import torch

    from render_bridge.procedural_world import build_scene_bank
    from render_bridge.recon.capture import capture_log
    from render_bridge.recon.evaluate import novel_view_table
    from render_bridge.recon.fit import fit
    from render_bridge.recon.model import scene_bank_of

    device, bank, rig, world, cfg, capture_kw = _setup(args)
    offsets = (0, 1) if args.tiny else (0, 1, 2, 3)
    t_start, scenes, per_scene = time.perf_counter(), [], []
    for s in range(args.scenes):
        t0 = time.perf_counter()
        cap = capture_log(bank, s, rig, world, device=device, **capture_kw)
        _sync()
        t_cap = time.perf_counter() - t0
        try:
            scene = fit(cap, cfg, progress=False, device=device)
        except Exception as err:  # noqa: BLE001 - keep the GPU run alive: record, then fit without densification
            if not cfg.densify:
                raise
            FAILURES.append(
                f"scene {s}: fit with densification failed ({type(err).__name__}: {err}); refit with densify=False"
            )
            print("[recon bench] " + FAILURES[-1], flush=True)
            cfg = dataclasses.replace(cfg, densify=False)
            scene = fit(cap, cfg, progress=False, device=device)
        _sync()
        t1 = time.perf_counter()
        table = novel_view_table(
            scene, bank, s, offsets, cousins=not args.no_cousins, out_dir=os.path.join(out, f"scene_{s}")
        )
        t_eval = time.perf_counter() - t1
        row = {"scenario": s, "scenario_id": int(bank.scenario_id[s]), "frames": cap.num_frames, "points": int(cap.points.shape[0]),
               "iterations": cfg.iterations, "fit_seconds": scene.meta["fit_seconds"], "capture_seconds": t_cap,
               "eval_seconds": t_eval, "gaussians": scene.num_gaussians, "backend": scene.meta["backend"],
               "sky_backend": scene.meta["sky_backend"], "table": table}  # fmt: skip
        per_scene.append(row)
        scenes.append(scene)
        with open(os.path.join(out, f"scene_{s}", "result.json"), "w") as f:
            json.dump(row, f, indent=1)
        print(f"[recon bench] scene {s}: fit {row['fit_seconds']:.1f}s ({cfg.iterations} steps, {row['gaussians']} Gaussians), "
              f"PSNR " + " ".join(f"{k}m={v['psnr']:.2f}" for k, v in table["offsets"].items())
              + (f" cousins={table['cousins'].get('psnr', float('nan')):.2f}" if "cousins" in table else ""), flush=True)  # fmt: skip
        used, left = time.perf_counter() - t_start, args.scenes - s - 1
        per = used / (s + 1)
        if left and used + per * left > args.time_budget:  # shrink later fits to stay inside the budget
            fit_share = row["fit_seconds"] / max(per, 1e-9)
            room = max((args.time_budget - used) / left - per * (1 - fit_share), 0.0)
            steps = int(max(200 if not args.tiny else 2, cfg.iterations * room / max(row["fit_seconds"], 1e-9)))
            if steps < cfg.iterations:
                cfg = dataclasses.replace(cfg, iterations=steps)
    summary = {}
    keys = list(per_scene[0]["table"]["offsets"]) + (["cousins"] if "cousins" in per_scene[0]["table"] else [])
    for k in keys:
        rows = [r["table"]["offsets"][k] if k != "cousins" else r["table"]["cousins"] for r in per_scene]
        rows = [r for r in rows if r.get("views", 0) > 0]
        summary[k] = {"psnr": float(np.mean([r["psnr"] for r in rows])) if rows else None,
                      "ssim": float(np.mean([r["ssim"] for r in rows])) if rows else None, "scenes": len(rows)}  # fmt: skip
    result = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "warmup": dict(WARMUP), "failures": FAILURES,
              "rig": dataclasses.asdict(rig),
              "fit_config": dataclasses.asdict(cfg), "scenes": len(per_scene), "table": summary,
              "fit_seconds_scene0": per_scene[0]["fit_seconds"], "fit_seconds_mean": float(np.mean([r["fit_seconds"] for r in per_scene])),
              "gaussians_mean": float(np.mean([r["gaussians"] for r in per_scene])),
              "iterations_used": [r["iterations"] for r in per_scene], "per_scene": per_scene}  # fmt: skip
    sub = jax.tree.map(lambda x: x[: len(scenes)], bank)
    steps = 2 if args.tiny else args.env_steps
    recon_bank = scene_bank_of(scenes, device)
    speeds = env_speed(sub, {"recon": (recon_bank, scenes[0].sky_map(device)),
                             "procedural": (build_scene_bank(sub, world, device), True)}, rig, steps, device)  # fmt: skip
    result["env_recon"], result["env_procedural"] = speeds["recon"], speeds["procedural"]
    print(f"[recon bench] camera env: reconstructed {result['env_recon']['frames_per_s']:.1f} frames/s, "
          f"procedural {result['env_procedural']['frames_per_s']:.1f} frames/s", flush=True)  # fmt: skip
    return result


def run_sky(args, out: str) -> dict:
    import torch

    from render_bridge.recon.capture import capture_log
    from render_bridge.recon.fit import fit
    from render_bridge.recon.geometry import view_matrices
    from render_bridge.recon.groundtruth import render_groundtruth
    from render_bridge.recon.metrics import psnr, ssim
    from render_bridge.recon.sky_nvdiffrast import CubeSky, nvdiffrast_available
    from render_bridge.sky import ray_directions

    device, bank, rig, world, cfg, capture_kw = _setup(args)
    cap = capture_log(bank, 0, rig, world, device=device, **capture_kw)
    views = view_matrices(torch.as_tensor(cap.ego_poses, device=device), torch.as_tensor(cap.cam_to_ego, device=device))
    dirs = ray_directions(torch.linalg.inv(views), torch.as_tensor(cap.Ks, device=device), *cap.size)
    have = nvdiffrast_available()
    result = {"nvdiffrast_available": have, "directions": int(dirs[..., 0].numel())}
    backends = ["torch"] + (["nvdiffrast"] if have else [])
    outs = {}
    for b in backends:
        try:
            sky = CubeSky(64, backend=b, device=device)
            with torch.no_grad():
                sky.logits.normal_(0.0, 1.0, generator=torch.Generator(device=device).manual_seed(0))
            reps = 3 if args.tiny else 50
            for _ in range(2):
                sky.lookup(dirs).sum().backward()
            _sync()
            t0 = time.perf_counter()
            for _ in range(reps):
                sky.lookup(dirs).sum().backward()
            _sync()
            result[f"lookup_fwd_bwd_ms_{b}"] = 1000 * (time.perf_counter() - t0) / reps
            outs[b] = sky.lookup(dirs).detach()
        except Exception as err:  # noqa: BLE001 - record and go on with the other backend
            result[f"lookup_error_{b}"] = f"{type(err).__name__}: {err}"
    if len(outs) == 2:
        diff = (outs["torch"] - outs["nvdiffrast"]).abs()
        result["max_abs_diff_torch_vs_nvdiffrast"] = float(diff.max())
        result["mean_abs_diff_torch_vs_nvdiffrast"] = float(diff.mean())
    _, val = cap.split(cfg.holdout_every)
    gt, _, alpha = render_groundtruth(
        bank, 0, cap.ego_poses[val], cap.actor_poses[val], rig, world, device=device, return_points=True
    )
    sky_px = alpha < 0.5  # pixels where the ground-truth world shows the sky
    for b in backends:
        try:
            scene = fit(cap, dataclasses.replace(cfg, sky_backend=b), progress=False, device=device)
            pred = scene.render(cap.ego_poses[val], cap.actor_poses[val])
            mse_sky = float(((pred - gt) ** 2)[sky_px].mean()) if bool(sky_px.any()) else float("nan")
            result[f"fit_{b}"] = {"fit_seconds": scene.meta["fit_seconds"], "psnr_0m": psnr(pred, gt), "ssim_0m": ssim(pred, gt),
                                  "psnr_sky_pixels": 10 * np.log10(1.0 / max(mse_sky, 1e-12)),
                                  "sky_pixel_fraction": float(sky_px.float().mean()), "sky_backend": scene.meta["sky_backend"]}  # fmt: skip
        except Exception as err:  # noqa: BLE001
            result[f"fit_{b}"] = {"error": f"{type(err).__name__}: {err}"}
    return result


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.scenes < 1:
        raise SystemExit("--scenes must be >= 1")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    out = args.out
    os.makedirs(out, exist_ok=True)
    for part, fn in (("table", run_table), ("sky", run_sky)):
        if args.part in (part, "all"):
            t0 = time.perf_counter()
            res = fn(args, out)
            res["part_seconds"] = time.perf_counter() - t0
            with open(os.path.join(out, f"{part}.json"), "w") as f:
                json.dump(res, f, indent=1, default=float)
            print(f"[recon bench] wrote {os.path.join(out, part + '.json')} ({res['part_seconds']:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
