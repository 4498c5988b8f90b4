"""`reconrl scenarios generate|show|import-nuscenes`: build scenario banks (procedural or from
nuScenes logs) and look at them.

    reconrl scenarios generate --num 1000 --split train --seed 0 --out data/train.npz
    reconrl scenarios show --bank data/train.npz --index 3 --out scene.png [--t 0]
    reconrl scenarios show --split heldout --seed 0 --index 3 --out scene.gif   # whole log
    reconrl scenarios import-nuscenes --dataroot /data/nuscenes --version v1.0-mini --out data/nuscenes.npz
    reconrl scenarios import-scenarionet ../shared/data/nuscenes_mini_scenarionet --out data/real.npz
"""

from __future__ import annotations

import os
import time

from jaxsim.io_utils import check_output_file, write_json

LAYOUTS = ("straight", "curve", "intersection", "merge")  # Layout codes 0..3
ANIMATION_EXTS = (".gif", ".mp4")


def add_parser(sub) -> None:
    p = sub.add_parser("scenarios", help="generate and inspect scenario banks")
    ssub = p.add_subparsers(
        dest="scenarios_command", required=True, metavar="{generate,show,import-nuscenes,import-scenarionet}"
    )

    g = ssub.add_parser("generate", help="write a bank of procedural scenarios (.npz)")
    g.add_argument("--num", type=int, default=1000, help="number of scenarios (default %(default)s)")
    g.add_argument(
        "--split", default="train", help="train, heldout or validation (disjoint seeds; default %(default)s)"
    )
    g.add_argument("--seed", type=int, default=0, help="generator seed (default %(default)s)")
    g.add_argument("--out", default=None, help="output .npz (default data/<split>.npz)")
    g.add_argument("--json", default=None, help="also write the summary to this JSON file")

    s = ssub.add_parser("show", help="draw one scenario: a PNG at step --t, or a .gif/.mp4 of the whole log")
    s.add_argument("--bank", default=None, help="scenario bank .npz (default: generate the scenario on the fly)")
    s.add_argument("--split", default="train", help="procedural split when no --bank (default %(default)s)")
    s.add_argument("--seed", type=int, default=0, help="procedural seed when no --bank (default %(default)s)")
    s.add_argument("--index", type=int, default=0, help="scenario index (default %(default)s)")
    s.add_argument("--out", default="scene.png", help="output .png, .gif or .mp4 (default %(default)s)")
    s.add_argument("--t", type=int, default=0, help="log step for a .png (default %(default)s)")
    s.add_argument("--size", type=int, default=512, help="image size in pixels (default %(default)s)")
    s.add_argument("--fps", type=float, default=10.0, help="frames per second of a .gif/.mp4 (default %(default)s)")

    n = ssub.add_parser("import-nuscenes", help="convert nuScenes logs (JSON tables + map expansion) to a bank (.npz)")
    n.add_argument("--dataroot", required=True, help="folder with <version>/*.json and maps/expansion/*.json")
    n.add_argument("--version", default="v1.0-mini", help="table folder, e.g. v1.0-mini (default %(default)s)")
    n.add_argument("--out", default=os.path.join("data", "nuscenes.npz"), help="output .npz (default %(default)s)")
    n.add_argument("--scenes", type=int, default=None, help="convert only the first N scenes (by name)")
    n.add_argument(
        "--clip-stride",
        type=int,
        default=40,
        help="log steps (0.1 s) between the starts of a scene's clips (default %(default)s)",
    )
    n.add_argument("--devkit", action="store_true", help="read through nuscenes-devkit (must be importable)")
    n.add_argument("--json", default=None, help="also write the summary (per-clip stats) to this JSON file")

    r = ssub.add_parser(
        "import-scenarionet",
        help="convert ScenarioNet scenario descriptions (nuScenes, Waymo, nuPlan, ... .pkl) to a bank",
    )
    r.add_argument("inputs", nargs="+", metavar="INPUT", help=".pkl scene files or folders of them")
    r.add_argument("--out", default=os.path.join("data", "scenarionet.npz"), help="output .npz (default %(default)s)")
    r.add_argument(
        "--clip-stride",
        type=int,
        default=40,
        help="log steps between the starts of a scene's clips (default %(default)s)",
    )
    r.add_argument(
        "--spare-slots",
        type=int,
        default=2,
        help="agent slots left free for DAA to spawn adversaries into (default %(default)s)",
    )
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--json", default=None, help="also write the report (per scene and clip) to this JSON file")
    p.set_defaults(run=run)


def _check_split(split: str) -> None:
    from jaxsim.procedural import SPLITS

    if split not in SPLITS:
        raise ValueError(f"--split is {split!r}; allowed values: {', '.join(SPLITS)}")


def _generate(args) -> int:
    import numpy as np

    from jaxsim.bank_io import save_bank
    from jaxsim.procedural import generate_bank

    _check_split(args.split)
    if args.num < 1:
        raise ValueError(f"--num must be >= 1, got {args.num}")
    out = args.out or os.path.join("data", f"{args.split}.npz")
    check_output_file(out, "--out", create_parent=True)  # before the work, not after it
    if args.json:
        check_output_file(args.json, "--json")
    start = time.perf_counter()
    bank = generate_bank(args.num, split=args.split, seed=args.seed)
    gen_s = time.perf_counter() - start
    if os.path.dirname(out):
        os.makedirs(os.path.dirname(out), exist_ok=True)
    save_bank(out, bank)
    counts = np.bincount(np.asarray(bank.layout), minlength=len(LAYOUTS))
    agents = np.asarray(bank.agent_valid).any(axis=1).sum(axis=1)
    summary = {
        "num": int(args.num),
        "split": args.split,
        "seed": int(args.seed),
        "out": out,
        "layouts": {name: int(c) for name, c in zip(LAYOUTS, counts)},
        "agents_per_scenario": float(agents.mean()),
        "generate_s": round(gen_s, 3),
        "total_s": round(time.perf_counter() - start, 3),
    }
    print(
        f"generated {args.num} scenarios (split {args.split}, seed {args.seed}) in {gen_s:.2f} s "
        f"({summary['total_s']:.2f} s with saving) -> {out}"
    )
    print(
        "layouts: "
        + ", ".join(f"{k} {v}" for k, v in summary["layouts"].items())
        + f"; agents per scenario {summary['agents_per_scenario']:.1f}"
    )
    if args.json:
        write_json(args.json, summary)
        print(f"wrote {args.json}")
    return 0


def _load_one(args):
    if args.bank:
        from jaxsim.bank_io import load_bank

        bank = load_bank(args.bank)
        n = bank.num_scenarios
        if not 0 <= args.index < n:
            raise ValueError(f"--index {args.index} is out of range for {args.bank} ({n} scenarios: 0..{n - 1})")
        return bank[args.index]
    from jaxsim.procedural import generate_scenario, scenario_seed

    _check_split(args.split)
    if args.index < 0:
        raise ValueError(f"--index must be >= 0, got {args.index}")
    return generate_scenario(scenario_seed(args.split, args.seed, args.index))


def _show(args) -> int:
    from jaxsim import viz

    if not 16 <= args.size <= 4096:
        raise ValueError(f"--size must be in [16, 4096], got {args.size}")
    ext = os.path.splitext(args.out)[1].lower()
    if ext not in (".png",) + ANIMATION_EXTS:
        raise ValueError(f"--out must end in .png, .gif or .mp4, got {args.out!r}")
    check_output_file(args.out, "--out")
    scenario = _load_one(args)
    steps = int(scenario.ego_traj.shape[0])
    layout = int(scenario.layout)
    name = LAYOUTS[layout] if 0 <= layout < len(LAYOUTS) else "log"
    if ext in ANIMATION_EXTS:
        frames = viz.draw_log(scenario, size_px=args.size)
        viz.save_animation(frames, args.out, fps=args.fps)
        print(f"wrote {args.out} ({len(frames)} frames, scenario {args.index}, {name})")
        return 0
    if not 0 <= args.t < steps:
        raise ValueError(f"--t {args.t} is out of range for a log of {steps} steps (0..{steps - 1})")
    viz.save_png(viz.draw_scene(scenario, t=args.t, size_px=args.size), args.out)
    print(f"wrote {args.out} (scenario {args.index}, {name}, t={args.t})")
    return 0


def _import_nuscenes(args) -> int:
    from jaxsim.bank_io import save_bank
    from jaxsim.sources.nuscenes import ImportConfig, import_nuscenes

    if args.scenes is not None and args.scenes < 1:
        raise ValueError(f"--scenes must be >= 1, got {args.scenes}")
    if args.clip_stride < 1:
        raise ValueError(f"--clip-stride must be >= 1, got {args.clip_stride}")
    check_output_file(args.out, "--out", create_parent=True)
    if args.json:
        check_output_file(args.json, "--json")
    start = time.perf_counter()
    bank, summary = import_nuscenes(
        args.dataroot,
        args.version,
        ImportConfig(clip_stride=args.clip_stride),
        max_scenes=args.scenes,
        use_devkit=args.devkit,
    )
    if os.path.dirname(args.out):
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
    save_bank(args.out, bank)
    summary.update(out=args.out, total_s=round(time.perf_counter() - start, 3))
    print(
        f"imported {summary['num_clips']} clips from {summary['scenes']} scene(s) of {args.version} "
        f"in {summary['total_s']:.2f} s -> {args.out}"
    )
    print(
        f"ego bicycle drift: max {summary['drift_max_m']:.3f} m, median {summary['drift_median_m']:.3f} m; "
        f"clipped control steps {summary['clipped_steps']}; agents per clip {summary['agents_per_clip']:.1f}"
    )
    for skip in summary["skipped"]:
        print(f"skipped {skip['scene']}: {skip['reason']}")
    if args.json:
        write_json(args.json, summary)
        print(f"wrote {args.json}")
    return 0


def _import_scenarionet(args) -> int:
    from jaxsim.bank_checks import check_bank_physics
    from jaxsim.bank_io import save_bank
    from jaxsim.scenario import to_numpy
    from jaxsim.sources.nuscenes import ImportConfig
    from jaxsim.sources.scenarionet import import_scenarionet
    from jaxsim.sources.scenarionet.report import progress_line, report_lines

    if args.clip_stride < 1:
        raise ValueError(f"--clip-stride must be >= 1, got {args.clip_stride}")
    check_output_file(args.out, "--out", create_parent=True)
    if args.json:
        check_output_file(args.json, "--json")
    start = time.perf_counter()
    bank, summary = import_scenarionet(
        args.inputs,
        ImportConfig(clip_stride=args.clip_stride),
        progress=None if args.no_progress else progress_line(),
        spare_slots=args.spare_slots,
    )
    check_bank_physics(to_numpy(bank))  # the checks load_bank applies, before anything is written
    if os.path.dirname(args.out):
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
    save_bank(args.out, bank)
    summary.update(out=args.out, total_s=round(time.perf_counter() - start, 3))
    print("\n".join(report_lines(summary)))
    print(f"wrote {args.out} in {summary['total_s']:.2f} s")
    if args.json:
        write_json(args.json, summary)
        print(f"wrote {args.json}")
    return 0


def run(args) -> int:
    return {
        "generate": _generate,
        "show": _show,
        "import-nuscenes": _import_nuscenes,
        "import-scenarionet": _import_scenarionet,
    }[args.scenarios_command](args)
