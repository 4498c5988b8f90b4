"""`reconrl recon train-restorer|refine|eval-restore`: the diffusion restorer and progressive refinement.

    reconrl recon train-restorer --mode paper|oracle --work runs/rw --out runs/restorer_paper [--num 8] [--json F]
    reconrl recon refine --restorer paper=runs/restorer_paper --work runs/rw [--num 8] [--offsets 1,2,3] [--json F]
    reconrl recon eval-restore --restorer paper=runs/restorer_paper --work runs/rw [--offsets 0,1,2,3] [--json F]

`--work` caches what the commands share, per scenario: the capture, the plain fit, the
restorer pairs and the refined scenes (`WORK/scenes/KEY/...`), so a command reruns only
what is missing (and an interrupted fit, restorer training or refinement resumes).
train-restorer uses the train split (it refuses held-out scenes); refine and
eval-restore the held-out split. eval-restore prints the table (a) plain reconstruction,
(b) restorer applied to its renders, (c) refined reconstruction, per restorer, at each
offset and along CTG cousins, per scene and averaged; `refine --control` adds the control
column `refined_control` (the same extra fit steps without pseudo-views).
"""
from __future__ import annotations

import dataclasses
import json
import os
import time

import numpy as np


def _common(p, split: str) -> None:
    from agents.scenario_source import add_bank_arguments

    p.add_argument("--work", required=True, help="cache folder shared by these commands (captures, fits, pairs, refined scenes)")
    p.add_argument("--scenarios", default=None, help="comma-separated scenario indices (default: all --num of the bank)")
    p.add_argument("--width", type=int, default=160, help="image width (default %(default)s)")
    p.add_argument("--height", type=int, default=96, help="image height (default %(default)s)")
    p.add_argument("--stride", type=int, default=1, help="capture every N-th log step (default %(default)s)")
    p.add_argument("--max-frames", type=int, default=0, help="at most this many frames per capture (0 = all)")
    p.add_argument("--gaussians", type=int, default=0, help="ground-truth world Gaussians (0 = natural density)")
    p.add_argument("--fit-iters", type=int, default=2000, help="plain fit iterations (default %(default)s)")
    p.add_argument("--max-points", type=int, default=60000, help="initial Gaussians per fit (default %(default)s)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--json", default=None, help="write the numbers to this JSON file")
    add_bank_arguments(p, split=split, num=8)


def add_subcommands(rsub) -> None:
    """Add train-restorer, refine and eval-restore to the `reconrl recon` sub-parsers."""
    t = rsub.add_parser("train-restorer", help="build restorer pairs on train-split scenes and train the DriveRestorer")
    _common(t, "train")
    t.add_argument("--mode", required=True, choices=("paper", "oracle"), help="paper: weak fits vs logged frames; oracle: shifted renders vs ground truth")
    t.add_argument("--out", required=True, help="restorer checkpoint folder (training resumes from it)")
    t.add_argument("--steps", type=int, default=2000, help="training steps in all (default %(default)s)")
    t.add_argument("--batch-size", type=int, default=32, help="(default %(default)s)")
    t.add_argument("--lr", type=float, default=3e-4, help="(default %(default)s)")
    t.add_argument("--channels", default="32,64,128,128", help="UNet block channels (default %(default)s)")
    t.add_argument("--sample-steps", type=int, default=8, help="DDIM steps at restore time (default %(default)s)")
    t.add_argument("--prediction", default="sample", help="sample, epsilon or v_prediction (default %(default)s)")
    t.add_argument("--no-residual", action="store_true", help="predict the clean image directly, not degraded + correction")
    t.add_argument("--far-weight", type=float, default=1.0, help="extra loss weight above the horizon (sky, far field)")
    t.add_argument("--sparse-every", default="4", help="paper mode: sparse-view fits on every k-th frame (default %(default)s)")
    t.add_argument("--undertrain", default="0.1", help="paper mode: under-trained fits at these fractions of --fit-iters")
    t.add_argument("--offsets", default="1,2,3", help="oracle mode: lateral shifts in m (default %(default)s)")
    t.add_argument("--frame-stride", type=int, default=1, help="oracle mode: every k-th frame (default %(default)s)")
    t.set_defaults(run_sub=_one_line_errors(train_restorer))
    r = rsub.add_parser("refine", help="progressive refinement of held-out reconstructions with a restorer")
    _common(r, "heldout")
    r.add_argument("--restorer", action="append", default=[], help="NAME=DIR (repeatable)")
    r.add_argument("--control", action="store_true",
                   help="also run the control 'control': the same rounds and fit steps without pseudo-views")
    r.add_argument("--offsets", default="1,2,3", help="lateral offset per round in m (default %(default)s)")
    r.add_argument("--weight", type=float, default=0.5, help="loss weight of the pseudo-views (default %(default)s)")
    r.add_argument("--iterations", type=int, default=600, help="fit steps per round (default %(default)s)")
    r.add_argument("--frame-stride", type=int, default=2, help="every k-th training frame is rendered (default %(default)s)")
    r.add_argument("--cousins", type=int, default=2, help="cousin trajectories in the last round (default %(default)s)")
    r.add_argument("--restore-steps", type=int, default=0, help="DDIM steps for the pseudo-views (0 = the restorer's default)")
    r.set_defaults(run_sub=_one_line_errors(refine_cmd))
    e = rsub.add_parser("eval-restore", help="table: (a) plain, (b) restored renders, (c) refined, against ground truth")
    _common(e, "heldout")
    e.add_argument("--restorer", action="append", default=[], help="NAME=DIR (repeatable; refined scenes of NAME are used when present)")
    e.add_argument("--offsets", default="0,1,2,3", help="lateral offsets in m (default %(default)s)")
    e.add_argument("--cousins", type=int, default=2, help="cousin trajectories (0 = none) (default %(default)s)")
    e.add_argument("--restore-steps", default="0",
                   help="DDIM steps for column (b), comma-separated for several columns (0 = the restorer's default; "
                        "a column per extra count is named restored_NAME_sK)")  # fmt: skip
    e.set_defaults(run_sub=_one_line_errors(eval_restore))


def _one_line_errors(fn):
    """Divergence (restorer NaN loss, fit NaN loss) as a ValueError: the CLI prints one line naming the step
    and the checkpoint kept."""

    def run(args) -> int:
        from render_bridge.recon.fit import FitDiverged
        from render_bridge.recon.restorer import NonFiniteLoss

        try:
            return fn(args)
        except (NonFiniteLoss, FitDiverged) as err:
            raise ValueError(str(err)) from None

    return run


# ---------------------------------------------------------------- shared cache
def _floats(text: str, name: str) -> tuple:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ValueError(f"{name} must be comma-separated numbers, got {text!r}") from None


def _device(args):
    import torch

    return torch.device(args.device) if args.device else torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _scenarios(args, bank) -> list[int]:
    n = int(bank.ego_traj.shape[0])
    idx = [int(x) for x in args.scenarios.split(",")] if args.scenarios else list(range(n))
    bad = [i for i in idx if not 0 <= i < n]
    if bad:
        raise ValueError(f"--scenarios {bad} outside the bank's 0..{n - 1}")
    return idx


def _key(args, bank, i: int) -> str:
    src = f"bank-{os.path.splitext(os.path.basename(args.bank))[0]}" if args.bank else f"{args.split}-seed{args.seed}"
    return f"{src}_id{int(bank.scenario_id[i])}_{args.width}x{args.height}_s{args.stride}_f{args.max_frames}_g{args.gaussians}"


def _fit_cfg(args):
    from render_bridge.recon.fit import FitConfig

    return FitConfig(iterations=args.fit_iters, max_points=args.max_points)


def scene_assets(args, bank, i: int, timings: dict, plain: bool = True):
    """(work folder, capture, plain scene or None if not `plain`) of scenario i, built and cached on first use."""
    from render_bridge.cameras import RigConfig
    from render_bridge.procedural_world import WorldConfig
    from render_bridge.recon.capture import LoggedCapture, capture_log
    from render_bridge.recon.fit import fit
    from render_bridge.recon.model import ReconScene

    d = os.path.join(args.work, "scenes", _key(args, bank, i))
    dev = _device(args)
    if os.path.exists(os.path.join(d, "capture", "capture.json")):
        cap = LoggedCapture.load(os.path.join(d, "capture"))
    else:
        t0 = time.perf_counter()
        cap = capture_log(bank, i, RigConfig("front", args.width, args.height), WorldConfig(target_gaussians=args.gaussians),
                          stride=args.stride, device=dev, max_frames=args.max_frames)  # fmt: skip
        cap.save(os.path.join(d, "capture"))
        timings.setdefault("capture_s", []).append(time.perf_counter() - t0)
    path = os.path.join(d, f"plain_it{args.fit_iters}.pt")
    if not plain:
        return d, cap, None
    if os.path.exists(path):
        scene = ReconScene.load(path, device=dev)
    else:
        scene = fit(cap, _fit_cfg(args), ckpt_dir=os.path.join(d, f"plain_it{args.fit_iters}_ckpt"), progress=not args.no_progress, device=dev)
        scene.save(path)
        timings.setdefault("fit_s", []).append(scene.meta["fit_seconds"])
    return d, cap, scene


def _write(args, result: dict) -> None:
    print(json.dumps(_summary(result), indent=1, default=float))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2, default=float)


def _summary(result: dict) -> dict:
    return {k: v for k, v in result.items() if k not in ("scenes", "losses")}


def _timing_stats(t: dict) -> dict:
    return {k: {"mean": float(np.mean(v)), "total": float(np.sum(v)), "n": len(v)} for k, v in t.items() if v}


def _load_restorers(specs, dev, size) -> dict:
    from render_bridge.recon.restorer import DriveRestorer

    out = {}
    for spec in specs:
        name, _, path = spec.rpartition("=")
        name = name or os.path.basename(os.path.normpath(path))
        out[name] = DriveRestorer.load(path, image_size=size, device=dev)
    return out


# ---------------------------------------------------------------- commands
def train_restorer(args) -> int:
    from agents.scenario_source import bank_from_args
    from render_bridge.recon.pairs import RestorePairs, oracle_pairs, pair_weights, paper_pairs
    from render_bridge.recon.restorer import DriveRestorer, RestorerConfig, RestorerTraining

    if not args.bank and args.split != "train":
        raise ValueError(f"--split {args.split!r}: the restorer trains on the train split only (held-out scenes are for evaluation)")
    bank, dev, timings, parts = bank_from_args(args), _device(args), {}, []
    t0 = time.perf_counter()
    for i in _scenarios(args, bank):
        d, cap, scene = scene_assets(args, bank, i, timings, plain=args.mode == "oracle")
        tag = f"pairs_{args.mode}_it{args.fit_iters}_" + (f"sp{args.sparse_every}_ut{args.undertrain}" if args.mode == "paper"
                                                          else f"off{args.offsets}_fs{args.frame_stride}")  # fmt: skip
        path = os.path.join(d, tag.replace(",", "-") + ".npz")
        if os.path.exists(path):
            parts.append(RestorePairs.load(path))
            continue
        t1 = time.perf_counter()
        if args.mode == "paper":
            p = paper_pairs(cap, _fit_cfg(args), [int(k) for k in _floats(args.sparse_every, "--sparse-every")],
                            _floats(args.undertrain, "--undertrain"), device=dev)  # fmt: skip
        else:
            p = oracle_pairs(scene, bank, i, _floats(args.offsets, "--offsets"), args.frame_stride)
        p.save(path)
        parts.append(p)
        timings.setdefault("pairs_s", []).append(time.perf_counter() - t1)
    pairs = RestorePairs.concat(parts)
    data_s = time.perf_counter() - t0
    cfg = RestorerConfig(image_size=(args.height, args.width), block_channels=tuple(int(c) for c in args.channels.split(",")),
                         sample_steps=args.sample_steps, prediction=args.prediction, residual=not args.no_residual)  # fmt: skip
    restorer = DriveRestorer(cfg, device=dev)
    weight = pair_weights(pairs, cap.Ks, args.far_weight)
    hist = restorer.fit(pairs.degraded, pairs.target, RestorerTraining(steps=args.steps, batch_size=args.batch_size, lr=args.lr),
                        weight=weight, ckpt_dir=args.out, progress=not args.no_progress)  # fmt: skip
    restorer.save(args.out)
    losses = hist["losses"]
    _write(args, {
        "mode": args.mode, "out": args.out, "pairs": len(pairs), "pair_kinds": sorted(set(pairs.kind.tolist())),
        "scenarios": _scenarios(args, bank), "split": args.split, "data_seconds": data_s, "timings": _timing_stats(timings),
        "params": restorer.num_params, "config": dataclasses.asdict(cfg), "steps": hist["steps"],
        "train_seconds": hist["seconds"], "train_images_per_s": hist["images_per_s"],
        "loss_first": float(np.mean(losses[:20])) if losses else None, "loss_last": float(np.mean(losses[-20:])) if losses else None,
        "losses": losses,
    })  # fmt: skip
    return 0


def _refine_cfg(args):
    from render_bridge.recon.refine import RefineConfig

    return RefineConfig(offsets=_floats(args.offsets, "--offsets"), weight=args.weight, iterations=args.iterations,
                        frame_stride=args.frame_stride, cousins=args.cousins, restore_steps=args.restore_steps)  # fmt: skip


def _refine_dir(d: str, name: str, args) -> str:
    return os.path.join(d, f"refined_{name}_off{args.offsets.replace(',', '-')}_w{args.weight:g}_it{args.iterations}")


def refine_cmd(args) -> int:
    from agents.scenario_source import bank_from_args
    from render_bridge.recon.refine import refine

    bank, dev, timings, scenes = bank_from_args(args), _device(args), {}, []
    restorers = _load_restorers(args.restorer, dev, (args.height, args.width))
    if not restorers and not args.control:
        raise ValueError("refine needs --restorer NAME=DIR (repeatable) and/or --control")
    cfg = _refine_cfg(args)
    runs = [(name, r, cfg) for name, r in restorers.items()] + ([("control", None, dataclasses.replace(cfg, weight=0.0))]
                                                                if args.control else [])  # fmt: skip
    for i in _scenarios(args, bank):
        d, cap, scene = scene_assets(args, bank, i, timings)
        for name, restorer, rcfg in runs:
            t0 = time.perf_counter()
            _, report = refine(scene, cap, restorer, rcfg, work_dir=_refine_dir(d, name, args), bank=bank, scenario_idx=i,
                               progress=not args.no_progress, device=dev)  # fmt: skip
            timings.setdefault(f"refine_{name}_s", []).append(time.perf_counter() - t0)
            scenes.append({"scenario": i, "restorer": name, **report})
    _write(args, {"restorers": [n for n, *_ in runs], "config": dataclasses.asdict(cfg), "timings": _timing_stats(timings), "scenes": scenes})
    return 0


def _mean_table(tables: list[dict]) -> dict:
    """Average PSNR/SSIM per row over scenes (rows present in every table)."""
    rows = {}
    for key in tables[0]["offsets"]:
        vals = [t["offsets"][key] for t in tables]
        rows[f"{key}m"] = {m: float(np.mean([v[m] for v in vals])) for m in ("psnr", "ssim")}
    cous = [t["cousins"] for t in tables if t.get("cousins", {}).get("views")]
    if cous:
        rows["cousins"] = {m: float(np.mean([c[m] for c in cous])) for m in ("psnr", "ssim")} | {"scenes": len(cous)}
    return rows


def eval_restore(args) -> int:
    from agents.scenario_source import bank_from_args
    from render_bridge.recon.evaluate import novel_view_table
    from render_bridge.recon.model import ReconScene
    from render_bridge.recon.online import RestoredScene

    bank, dev, timings = bank_from_args(args), _device(args), {}
    restorers = _load_restorers(args.restorer, dev, (args.height, args.width))
    offsets = tuple(int(x) if float(x).is_integer() else x for x in _floats(args.offsets, "--offsets"))
    per_col: dict[str, list] = {}
    scenes = []
    for i in _scenarios(args, bank):
        d, cap, scene = scene_assets(args, bank, i, timings)
        tab = lambda s, i=i: novel_view_table(s, bank, i, offsets, args.cousins > 0, max_cousins=args.cousins)  # noqa: E731
        row = {"scenario": i, "plain": tab(scene)}
        for name, restorer in restorers.items():
            for k, steps in enumerate(int(v) for v in _floats(args.restore_steps, "--restore-steps")):
                col = f"restored_{name}" if k == 0 else f"restored_{name}_s{steps}"
                t0 = time.perf_counter()
                row[col] = tab(RestoredScene(scene, restorer, steps=steps or None))
                row[col]["restore_steps"] = steps or restorer.cfg.sample_steps
                timings.setdefault(f"{col}_eval_s", []).append(time.perf_counter() - t0)
        for name in list(restorers) + ["control"]:  # control: refinement rounds without pseudo-views, if run
            refined = _latest_refined(d, name)
            if refined:
                row[f"refined_{name}"] = tab(ReconScene.load(refined, device=dev))
                row[f"refined_{name}"]["scene_file"] = refined
        for col, t in row.items():
            if col != "scenario":
                per_col.setdefault(col, []).append(t)
        scenes.append(row)
    n = len(scenes)
    mean = {col: _mean_table(ts) for col, ts in per_col.items() if len(ts) == n}
    delta = {}
    for col in mean:
        if col != "plain":
            delta[col] = {r: mean[col][r]["psnr"] - mean["plain"][r]["psnr"] for r in mean[col] if r in mean["plain"]}
    _write(args, {"scenarios": _scenarios(args, bank), "offsets": list(offsets), "mean": mean, "psnr_gain_vs_plain": delta,
                  "timings": _timing_stats(timings), "scenes": scenes})  # fmt: skip
    return 0


def _latest_refined(d: str, name: str) -> str | None:
    """The last round's scene of the most recently finished refinement (refine.json written) of
    restorer `name` in scene folder d; None if there is none."""
    import glob

    done = glob.glob(os.path.join(d, f"refined_{name}_*", "refine.json"))
    if not done:
        return None
    run = os.path.dirname(max(done, key=lambda p: (os.path.getmtime(p), p)))
    rounds = glob.glob(os.path.join(run, "round_*", "scene.pt"))
    return max(rounds, key=lambda p: int(p.split("round_")[-1].split(os.sep)[0])) if rounds else None
