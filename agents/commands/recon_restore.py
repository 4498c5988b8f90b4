"""`reconrl recon prepare|train-restorer|refine|eval-restore`: the diffusion restorer and progressive refinement.

    reconrl recon prepare --work runs/rw --split train --pairs paper,oracle [--scenarios 0,2] [--json F]
    reconrl recon train-restorer --mode paper|oracle --work runs/rw --out runs/restorer_paper [--num 8] [--max-seconds S]
    reconrl recon refine --restorer paper=runs/restorer_paper --work runs/rw [--num 8] [--offsets 1,2,3] [--json F]
    reconrl recon eval-restore --restorer paper=runs/restorer_paper --work runs/rw [--offsets 0,1,2,3] [--json F]

`--work` caches what the commands share, per scenario (`recon_cache`): the capture, the
plain fit and its last checkpoint, the restorer pairs, the plain table and the refined
scenes, so a command reruns only what is missing (and an interrupted fit, restorer training
or refinement resumes). `prepare` builds those entries for some scenes (one process per
group of scenes, several at once), after which the other commands only read them.
train-restorer uses the train split (it refuses held-out scenes); refine and
eval-restore the held-out split. eval-restore prints the table (a) plain reconstruction,
(b) restorer applied to its renders, (c) refined reconstruction, per restorer, at each
offset and along CTG cousins, per scene and averaged; `refine --control` adds the control
column `refined_control` (the same extra fit steps without pseudo-views). refine and
eval-restore rewrite their --json after every scene, so a process stopped at a deadline
leaves what it finished.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

import numpy as np

from agents.commands import recon_cache as cache


def _common(p, split: str) -> None:
    from agents.scenario_source import add_bank_arguments

    p.add_argument(
        "--work", required=True, help="cache folder shared by these commands (captures, fits, pairs, refined scenes)"
    )
    p.add_argument(
        "--scenarios", default=None, help="comma-separated scenario indices (default: all --num of the bank)"
    )
    p.add_argument("--width", type=int, default=160, help="image width (default %(default)s)")
    p.add_argument("--height", type=int, default=96, help="image height (default %(default)s)")
    p.add_argument("--stride", type=int, default=1, help="capture every N-th log step (default %(default)s)")
    p.add_argument("--max-frames", type=int, default=0, help="at most this many frames per capture (0 = all)")
    p.add_argument("--gaussians", type=int, default=0, help="ground-truth world Gaussians (0 = natural density)")
    p.add_argument("--fit-iters", type=int, default=2000, help="plain fit iterations (default %(default)s)")
    p.add_argument("--max-points", type=int, default=60000, help="initial Gaussians per fit (default %(default)s)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--cached-only",
        action="store_true",
        help="skip scenes whose plain fit (train-restorer: pairs) is not in --work yet, instead of building it",
    )
    p.add_argument("--json", default=None, help="write the numbers to this JSON file")
    add_bank_arguments(p, split=split, num=8)


def _pair_arguments(p) -> None:
    p.add_argument(
        "--sparse-every", default="4", help="paper mode: sparse-view fits on every k-th frame (default %(default)s)"
    )
    p.add_argument(
        "--undertrain", default="0.1", help="paper mode: under-trained fits at these fractions of --fit-iters"
    )
    p.add_argument("--offsets", default="1,2,3", help="oracle mode: lateral shifts in m (default %(default)s)")
    p.add_argument("--frame-stride", type=int, default=1, help="oracle mode: every k-th frame (default %(default)s)")


def add_subcommands(rsub) -> None:
    """Add prepare, train-restorer, refine and eval-restore to the `reconrl recon` sub-parsers."""
    pr = rsub.add_parser("prepare", help="captures, plain fits and restorer pairs of some scenes, cached in --work")
    _common(pr, "heldout")
    pr.add_argument(
        "--pairs", default="", help="comma-separated pair modes to build too (paper, oracle; train split only)"
    )
    _pair_arguments(pr)
    pr.set_defaults(run_sub=_one_line_errors(prepare))
    t = rsub.add_parser("train-restorer", help="build restorer pairs on train-split scenes and train the DriveRestorer")
    _common(t, "train")
    t.add_argument(
        "--mode",
        required=True,
        choices=("paper", "oracle"),
        help="paper: weak fits vs logged frames; oracle: shifted renders vs ground truth",
    )
    t.add_argument("--out", required=True, help="restorer checkpoint folder (training resumes from it)")
    t.add_argument("--steps", type=int, default=2000, help="training steps in all (default %(default)s)")
    t.add_argument(
        "--max-seconds",
        type=float,
        default=0.0,
        help="stop training after this many seconds, saving a checkpoint (0 = no limit; data building not counted)",
    )
    t.add_argument(
        "--log-every",
        type=int,
        default=100,
        help="a log line every N steps, also with --no-progress (default %(default)s)",
    )
    t.add_argument("--batch-size", type=int, default=32, help="(default %(default)s)")
    t.add_argument("--lr", type=float, default=3e-4, help="(default %(default)s)")
    t.add_argument("--channels", default="32,64,128,128", help="UNet block channels (default %(default)s)")
    t.add_argument("--sample-steps", type=int, default=8, help="DDIM steps at restore time (default %(default)s)")
    t.add_argument("--prediction", default="sample", help="sample, epsilon or v_prediction (default %(default)s)")
    t.add_argument(
        "--no-residual", action="store_true", help="predict the clean image directly, not degraded + correction"
    )
    t.add_argument("--far-weight", type=float, default=1.0, help="extra loss weight above the horizon (sky, far field)")
    _pair_arguments(t)
    t.set_defaults(run_sub=_one_line_errors(train_restorer))
    r = rsub.add_parser("refine", help="progressive refinement of held-out reconstructions with a restorer")
    _common(r, "heldout")
    r.add_argument("--restorer", action="append", default=[], help="NAME=DIR (repeatable)")
    r.add_argument(
        "--control",
        action="store_true",
        help="also run the control 'control': the same rounds and fit steps without pseudo-views",
    )
    r.add_argument("--offsets", default="1,2,3", help="lateral offset per round in m (default %(default)s)")
    r.add_argument("--weight", type=float, default=0.5, help="loss weight of the pseudo-views (default %(default)s)")
    r.add_argument("--iterations", type=int, default=600, help="fit steps per round (default %(default)s)")
    r.add_argument(
        "--lr-means-scale",
        type=float,
        default=1.0,
        help="the means' learning rate relative to the plain fit's final one (default %(default)s)",
    )
    r.add_argument(
        "--frame-stride", type=int, default=2, help="every k-th training frame is rendered (default %(default)s)"
    )
    r.add_argument("--cousins", type=int, default=2, help="cousin trajectories in the last round (default %(default)s)")
    r.add_argument(
        "--restore-steps", type=int, default=0, help="DDIM steps for the pseudo-views (0 = the restorer's default)"
    )
    r.set_defaults(run_sub=_one_line_errors(refine_cmd))
    e = rsub.add_parser(
        "eval-restore", help="table: (a) plain, (b) restored renders, (c) refined, against ground truth"
    )
    _common(e, "heldout")
    e.add_argument(
        "--restorer",
        action="append",
        default=[],
        help="NAME=DIR (repeatable; refined scenes of NAME are used when present)",
    )
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


def _scenarios(args, bank, mode: str | None = None) -> list[int]:
    """--scenarios (default all), without those missing from the cache when --cached-only (an error if none is left)."""
    n = int(bank.ego_traj.shape[0])
    idx = [int(x) for x in args.scenarios.split(",")] if args.scenarios else list(range(n))
    bad = [i for i in idx if not 0 <= i < n]
    if bad:
        raise ValueError(f"--scenarios {bad} outside the bank's 0..{n - 1}")
    if getattr(args, "cached_only", False):
        missing = [i for i in idx if not cache.cached(args, bank, i, mode)]
        if missing:
            cache.log(f"--cached-only: skipping scenarios {missing} (not in {args.work} yet)")
        idx = [i for i in idx if i not in missing]
        if not idx:
            raise ValueError(f"--cached-only: none of the scenarios is in {args.work} yet")
    return idx


def _write(args, result: dict, final: bool = True) -> None:
    """Write --json (atomically; also after each scene, final=False) and, at the end, print the summary."""
    if final:
        print(json.dumps(_summary(result), indent=1, default=float), flush=True)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json + ".tmp", "w") as fh:
            json.dump(result, fh, indent=2, default=float)
        os.replace(args.json + ".tmp", args.json)


def _summary(result: dict) -> dict:
    return {k: v for k, v in result.items() if k not in ("scenes", "losses")}


def _timing_stats(t: dict) -> dict:
    return {k: {"mean": float(np.mean(v)), "min": float(np.min(v)), "max": float(np.max(v)), "total": float(np.sum(v)),
                "n": len(v)} for k, v in t.items() if v}  # fmt: skip


def _load_restorers(specs, dev, size) -> dict:
    from render_bridge.recon.restorer import DriveRestorer

    out = {}
    for spec in specs:
        name, _, path = spec.rpartition("=")
        name = name or os.path.basename(os.path.normpath(path))
        out[name] = DriveRestorer.load(path, image_size=size, device=dev)
    return out


def _pair_modes(args) -> list[str]:
    modes = [m.strip() for m in args.pairs.split(",") if m.strip()]
    bad = [m for m in modes if m not in ("paper", "oracle")]
    if bad:
        raise ValueError(f"--pairs {bad}: allowed modes are paper and oracle")
    if modes and not args.bank and args.split != "train":
        raise ValueError(f"--pairs with --split {args.split!r}: restorer pairs come from the train split only")
    return modes


# ---------------------------------------------------------------- commands
def prepare(args) -> int:
    from agents.scenario_source import bank_from_args

    modes = _pair_modes(args)
    bank, timings, t0 = bank_from_args(args), {}, time.perf_counter()
    for i in _scenarios(args, bank):
        cache.scene_assets(args, bank, i, timings)
        for mode in modes:
            cache.scene_pairs(args, bank, i, mode, timings)
    _write(args, {"scenarios": _scenarios(args, bank), "split": args.split, "pairs": modes, "timings": _timing_stats(timings),
                  "seconds": time.perf_counter() - t0})  # fmt: skip
    return 0


def train_restorer(args) -> int:
    from agents.scenario_source import bank_from_args
    from render_bridge.recon.pairs import RestorePairs, pair_weights
    from render_bridge.recon.restorer import DriveRestorer, RestorerConfig, RestorerTraining

    if not args.bank and args.split != "train":
        raise ValueError(
            f"--split {args.split!r}: the restorer trains on the train split only (held-out scenes are for evaluation)"
        )
    bank, dev, timings, parts = bank_from_args(args), cache.device_of(args), {}, []
    t0 = time.perf_counter()
    scenarios = _scenarios(args, bank, args.mode)
    for i in scenarios:
        p, cap = cache.scene_pairs(args, bank, i, args.mode, timings)
        parts.append(p)
    pairs = RestorePairs.concat(parts)
    data_s = time.perf_counter() - t0
    cache.log(f"train-restorer {args.mode}: {len(pairs)} pairs ready in {data_s:.1f} s; training up to {args.steps} steps"
              + (f" or {args.max_seconds:g} s" if args.max_seconds > 0 else ""))  # fmt: skip
    cfg = RestorerConfig(image_size=(args.height, args.width), block_channels=tuple(int(c) for c in args.channels.split(",")),
                         sample_steps=args.sample_steps, prediction=args.prediction, residual=not args.no_residual)  # fmt: skip
    restorer = DriveRestorer(cfg, device=dev)
    weight = pair_weights(pairs, cap.Ks, args.far_weight)
    hist = restorer.fit(pairs.degraded, pairs.target, RestorerTraining(steps=args.steps, batch_size=args.batch_size, lr=args.lr),
                        weight=weight, ckpt_dir=args.out, progress=not args.no_progress, max_seconds=args.max_seconds,
                        log_every=args.log_every)  # fmt: skip
    restorer.save(args.out)
    losses = hist["losses"]
    _write(args, {
        "mode": args.mode, "out": args.out, "pairs": len(pairs), "pair_kinds": sorted(set(pairs.kind.tolist())),
        "scenarios": scenarios, "split": args.split, "data_seconds": data_s, "timings": _timing_stats(timings),
        "params": restorer.num_params, "config": dataclasses.asdict(cfg), "steps": hist["steps"], "steps_asked": args.steps,
        "stopped_early": hist["stopped_early"], "train_seconds": hist["seconds"], "train_images_per_s": hist["images_per_s"],
        "loss_first": float(np.mean(losses[:20])) if losses else None, "loss_last": float(np.mean(losses[-20:])) if losses else None,
        "losses": losses,
    })  # fmt: skip
    return 0


def _refine_cfg(args):
    from render_bridge.recon.refine import RefineConfig

    return RefineConfig(offsets=cache.floats(args.offsets, "--offsets"), weight=args.weight, iterations=args.iterations,
                        lr_means_scale=args.lr_means_scale, frame_stride=args.frame_stride, cousins=args.cousins,
                        restore_steps=args.restore_steps)  # fmt: skip


def _refine_dir(d: str, name: str, args) -> str:
    # "c": rounds continue the plain fit (refinements made before that are not reused)
    return os.path.join(d, f"refined_{name}_off{args.offsets.replace(',', '-')}_w{args.weight:g}_it{args.iterations}"
                           f"_lr{args.lr_means_scale:g}_rs{args.restore_steps}_c")  # fmt: skip


def refine_cmd(args) -> int:
    from agents.scenario_source import bank_from_args
    from render_bridge.recon.refine import refine

    bank, dev, timings, scenes = bank_from_args(args), cache.device_of(args), {}, []
    restorers = _load_restorers(args.restorer, dev, (args.height, args.width))
    if not restorers and not args.control:
        raise ValueError("refine needs --restorer NAME=DIR (repeatable) and/or --control")
    cfg = _refine_cfg(args)
    runs = [(name, r, cfg) for name, r in restorers.items()] + ([("control", None, dataclasses.replace(cfg, weight=0.0))]
                                                                if args.control else [])  # fmt: skip
    result = {"restorers": [n for n, *_ in runs], "config": dataclasses.asdict(cfg), "timings": {}, "scenes": scenes}
    for i in _scenarios(args, bank):
        d, cap, scene = cache.scene_assets(args, bank, i, timings)
        state = cache.plain_state(d, args)
        for name, restorer, rcfg in runs:
            t0 = time.perf_counter()
            _, report = refine(scene, cap, restorer, rcfg, work_dir=_refine_dir(d, name, args), bank=bank, scenario_idx=i,
                               progress=not args.no_progress, device=dev, state=state)  # fmt: skip
            timings.setdefault(f"refine_{name}_s", []).append(time.perf_counter() - t0)
            scenes.append({"scenario": i, "restorer": name, **report})
            cache.log(f"scenario {i}: refined with {name} in {time.perf_counter() - t0:.1f} s "
                      f"({len(cfg.offsets)} rounds x {cfg.iterations} steps from step {report['start_step']})")  # fmt: skip
        result["timings"] = _timing_stats(timings)
        _write(args, result, final=False)
    _write(args, result)
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

    bank, dev, timings = bank_from_args(args), cache.device_of(args), {}
    restorers = _load_restorers(args.restorer, dev, (args.height, args.width))
    offsets = tuple(int(x) if float(x).is_integer() else x for x in cache.floats(args.offsets, "--offsets"))
    scenes, scenarios = [], _scenarios(args, bank)
    for i in scenarios:
        d, cap, scene = cache.scene_assets(args, bank, i, timings)
        tab = lambda s, i=i: novel_view_table(s, bank, i, offsets, args.cousins > 0, max_cousins=args.cousins)  # noqa: E731
        t0 = time.perf_counter()
        plain_json = os.path.join(
            d, f"table_plain_it{args.fit_iters}_off{args.offsets.replace(',', '-')}_c{args.cousins}.json"
        )
        row = {"scenario": i, "plain": cache.cached_json(plain_json, lambda: tab(scene))}
        timings.setdefault("plain_eval_s", []).append(time.perf_counter() - t0)
        for name, restorer in restorers.items():
            for k, steps in enumerate(int(v) for v in cache.floats(args.restore_steps, "--restore-steps")):
                col = f"restored_{name}" if k == 0 else f"restored_{name}_s{steps}"
                t0 = time.perf_counter()
                row[col] = tab(RestoredScene(scene, restorer, steps=steps or None))
                row[col]["restore_steps"] = steps or restorer.cfg.sample_steps
                timings.setdefault(f"{col}_eval_s", []).append(time.perf_counter() - t0)
        for name in list(restorers) + ["control"]:  # control: refinement rounds without pseudo-views, if run
            refined = _latest_refined(d, name)
            if refined:
                t0 = time.perf_counter()
                row[f"refined_{name}"] = tab(ReconScene.load(refined, device=dev))
                row[f"refined_{name}"]["scene_file"] = refined
                timings.setdefault(f"refined_{name}_eval_s", []).append(time.perf_counter() - t0)
        scenes.append(row)
        cache.log(
            f"scenario {i}: table with {len(row) - 1} columns; plain at 0 m {row['plain']['offsets'][str(offsets[0])]['psnr']:.2f} dB"
        )
        _write(args, _eval_result(scenarios, offsets, scenes, timings), final=False)
    _write(args, _eval_result(scenarios, offsets, scenes, timings))
    return 0


def _eval_result(scenarios, offsets, scenes: list[dict], timings: dict) -> dict:
    """Means over the scenes evaluated so far (a column counts when every one of them has it)."""
    per_col: dict[str, list] = {}
    for row in scenes:
        for col, t in row.items():
            if col != "scenario":
                per_col.setdefault(col, []).append(t)
    mean = {col: _mean_table(ts) for col, ts in per_col.items() if len(ts) == len(scenes)}
    delta = {col: {r: mean[col][r]["psnr"] - mean["plain"][r]["psnr"] for r in mean[col] if r in mean["plain"]}
             for col in mean if col != "plain"}  # fmt: skip
    return {"scenarios": scenarios, "evaluated": [row["scenario"] for row in scenes], "offsets": list(offsets),
            "mean": mean, "psnr_gain_vs_plain": delta, "timings": _timing_stats(timings), "scenes": scenes}  # fmt: skip


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
