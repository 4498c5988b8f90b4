"""`reconrl recon capture|fit|eval`: reconstruct a logged drive and measure novel views.

    reconrl recon capture --scenario 0 --out runs/cap0 [--rig front --width 160 --height 96] [bank args]
    reconrl recon fit --capture runs/cap0 --out runs/scene0.pt [--iterations 2000] [--ckpt-dir DIR] [--ply DIR]
    reconrl recon eval --scene runs/scene0.pt [--offsets 0,1,2,3] [--no-cousins] [--out-dir DIR] [bank args]

The bank arguments must name the bank the capture came from (procedural heldout split by
default); eval checks the scenario id. Every command takes --json PATH for its numbers.
If `agents.commands.recon_restore` defines `add_subcommands(subparsers)`, its commands
(train-restorer, refine) join this group.
"""

from __future__ import annotations

import importlib
import json
import time


def add_parser(sub) -> None:
    from agents.scenario_source import add_bank_arguments

    p = sub.add_parser("recon", help="3DGS reconstruction of logged drives and novel-view evaluation")
    rsub = p.add_subparsers(dest="recon_command", required=True)
    c = rsub.add_parser("capture", help="render a scenario's logged frames, poses and sparse LiDAR to a folder")
    c.add_argument("--scenario", type=int, default=0, help="scenario index in the bank (default %(default)s)")
    c.add_argument("--out", required=True, help="capture folder (layout: render_bridge/recon/capture.py)")
    c.add_argument("--rig", default="front", help="front or nuscenes6 (default %(default)s)")
    c.add_argument("--width", type=int, default=160, help="image width (default %(default)s)")
    c.add_argument("--height", type=int, default=96, help="image height (default %(default)s)")
    c.add_argument("--stride", type=int, default=1, help="every N-th log step (10 Hz at 1) (default %(default)s)")
    c.add_argument("--max-frames", type=int, default=0, help="at most this many frames (0 = the whole log)")
    c.add_argument("--backend", default="auto", help="auto, reference or gsplat (default %(default)s)")
    c.add_argument(
        "--gaussians", type=int, default=0, help="background Gaussians of the ground-truth world (0 = natural density)"
    )
    add_bank_arguments(c, split="heldout", num=8)
    f = rsub.add_parser("fit", help="fit a 3DGS scene to a capture (resumable)")
    f.add_argument("--capture", required=True, help="capture folder")
    f.add_argument("--out", required=True, help="scene file (.pt) to write")
    f.add_argument("--iterations", type=int, default=None, help="fit steps (default: FitConfig's)")
    f.add_argument("--backend", default="auto", help="auto, reference or gsplat (default %(default)s)")
    f.add_argument("--sky-backend", default="auto", help="auto, torch or nvdiffrast (default %(default)s)")
    f.add_argument("--ckpt-dir", default=None, help="checkpoint folder; a fit resumes from its latest checkpoint")
    f.add_argument("--ckpt-every", type=int, default=None, help="steps between checkpoints")
    f.add_argument("--ply", default=None, help="also export the scene as 3DGS PLY files into this folder")
    f.add_argument("--no-progress", action="store_true", help="no progress bar")
    e = rsub.add_parser("eval", help="novel-view PSNR/SSIM against the ground-truth world")
    e.add_argument("--scene", required=True, help="scene file written by `recon fit`")
    e.add_argument("--scenario", type=int, default=None, help="scenario index (default: the capture's)")
    e.add_argument("--offsets", default="0,1,2,3", help="lateral offsets in m (default %(default)s)")
    e.add_argument("--no-cousins", action="store_true", help="skip the CTG cousin trajectories")
    e.add_argument("--out-dir", default=None, help="PNG grids (ground truth | reconstruction | error) per offset")
    e.add_argument("--backend", default="auto", help="auto, reference or gsplat (default %(default)s)")
    add_bank_arguments(e, split="heldout", num=8)
    for q in (c, f, e):
        q.add_argument("--json", default=None, help="write the numbers to this JSON file")
    try:
        extra = importlib.import_module("agents.commands.recon_restore")
    except ModuleNotFoundError as err:
        if err.name != "agents.commands.recon_restore":
            raise
        extra = None
    if extra is not None and hasattr(extra, "add_subcommands"):
        extra.add_subcommands(rsub)
    p.set_defaults(run=run)


def _write(args, result: dict) -> None:
    print(json.dumps(result, indent=1, default=float))
    if getattr(args, "json", None):
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2, default=float)


def run(args) -> int:
    handler = {"capture": _capture, "fit": _fit, "eval": _eval}.get(args.recon_command)
    if handler is None:  # a sub-command added by recon_restore sets its own `run`
        return args.run_sub(args) if hasattr(args, "run_sub") else 2
    return handler(args)


def _capture(args) -> int:
    from agents.scenario_source import bank_from_args
    from render_bridge.cameras import RigConfig
    from render_bridge.procedural_world import WorldConfig
    from render_bridge.recon.capture import capture_log

    bank = bank_from_args(args)
    n = int(bank.ego_traj.shape[0])
    if not 0 <= args.scenario < n:
        raise ValueError(f"--scenario {args.scenario} is outside the bank's 0..{n - 1}")
    rig = RigConfig(args.rig, args.width, args.height)
    t0 = time.perf_counter()
    cap = capture_log(
        bank,
        args.scenario,
        rig,
        WorldConfig(target_gaussians=args.gaussians),
        stride=args.stride,
        backend=args.backend,
        max_frames=args.max_frames,
    )
    cap.save(args.out)
    _write(args, {"out": args.out, "frames": cap.num_frames, "cameras": len(cap.camera_names), "width": cap.size[0],
                  "height": cap.size[1], "points": int(cap.points.shape[0]), "seconds": time.perf_counter() - t0})  # fmt: skip
    return 0


def _fit(args) -> int:
    import dataclasses

    from render_bridge.recon.capture import LoggedCapture
    from render_bridge.recon.fit import FitConfig, FitDiverged, fit

    cap = LoggedCapture.load(args.capture)
    over = {k: v for k, v in (("iterations", args.iterations), ("ckpt_every", args.ckpt_every)) if v is not None}
    cfg = dataclasses.replace(FitConfig(backend=args.backend, sky_backend=args.sky_backend), **over)
    try:
        scene = fit(cap, cfg, ckpt_dir=args.ckpt_dir, progress=not args.no_progress)
    except FitDiverged as err:
        raise ValueError(str(err)) from None
    scene.save(args.out)
    result = {"out": args.out, "gaussians": scene.num_gaussians, "fit_seconds": scene.meta["fit_seconds"],
              "final_loss": scene.meta["final_loss"], "val_psnr": scene.meta["val_psnr"], "backend": scene.meta["backend"], "sky_backend": scene.meta["sky_backend"],
              "start_step": scene.meta["start_step"], "iterations": cfg.iterations}  # fmt: skip
    if args.ply:
        result["ply"] = scene.export_ply(args.ply)
    _write(args, result)
    return 0


def _eval(args) -> int:
    from agents.scenario_source import bank_from_args
    from render_bridge.recon.evaluate import novel_view_table
    from render_bridge.recon.model import ReconScene

    scene = ReconScene.load(args.scene)
    bank = bank_from_args(args)
    idx = args.scenario if args.scenario is not None else int(scene.meta.get("scenario_idx", 0))
    want = scene.meta.get("scenario_id")
    if not 0 <= idx < int(bank.ego_traj.shape[0]):
        raise ValueError(f"--scenario {idx} is outside the bank's 0..{int(bank.ego_traj.shape[0]) - 1}")
    if want is not None and int(bank.scenario_id[idx]) != int(want):
        raise ValueError(f"{args.scene}: captured scenario id {want} but the bank's scenario {idx} has id "
                         f"{int(bank.scenario_id[idx])}; pass the capture's bank arguments")  # fmt: skip
    try:
        offsets = tuple(float(x) if "." in x else int(x) for x in args.offsets.split(","))
    except ValueError:
        raise ValueError(f"--offsets must be comma-separated numbers, got {args.offsets!r}") from None
    t0 = time.perf_counter()
    table = novel_view_table(scene, bank, idx, offsets, not args.no_cousins, backend=args.backend, out_dir=args.out_dir)
    table["seconds"] = time.perf_counter() - t0
    _write(args, table)
    return 0
