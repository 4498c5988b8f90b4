"""The `--work` cache the restorer commands share (`reconrl recon prepare|train-restorer|refine|eval-restore`).

Per scenario one folder `WORK/scenes/KEY/` (KEY: bank, scenario id, image size, stride,
frame cap, world density) holds what every command reuses instead of redoing it:

    capture/                       the logged frames (`LoggedCapture`)
    plain_itN.pt, plain_itN_ckpt/  the plain fit of N steps and its last checkpoint (refinement continues it)
    pairs_MODE_itN_....npz         restorer training pairs (paper / oracle mode)
    table_plain_itN_....json       the plain reconstruction's novel-view table
    refined_NAME_.../              refinements (`render_bridge.recon.refine`)

Several processes may share a work folder as long as no two build the same scene's entry at
the same time (the GPU script hands each scene to one process); files are written atomically.
"""

from __future__ import annotations

import json
import os
import shutil
import time


def log(msg: str) -> None:
    """One progress line on stdout, flushed (logs show where the time goes even with --no-progress)."""
    print(f"[recon] {msg}", flush=True)


def device_of(args):
    import torch

    return torch.device(args.device) if args.device else torch.device("cuda" if torch.cuda.is_available() else "cpu")


def scene_key(args, bank, i: int) -> str:
    src = f"bank-{os.path.splitext(os.path.basename(args.bank))[0]}" if args.bank else f"{args.split}-seed{args.seed}"
    return f"{src}_id{int(bank.scenario_id[i])}_{args.width}x{args.height}_s{args.stride}_f{args.max_frames}_g{args.gaussians}"


def scene_dir(args, bank, i: int) -> str:
    return os.path.join(args.work, "scenes", scene_key(args, bank, i))


def fit_cfg(args):
    from render_bridge.recon.fit import FitConfig

    return FitConfig(iterations=args.fit_iters, max_points=args.max_points)


def plain_ckpt_dir(d: str, args) -> str:
    return os.path.join(d, f"plain_it{args.fit_iters}_ckpt")


def plain_state(d: str, args) -> str | None:
    """The plain fit's last checkpoint (optimiser state for refinement to continue from), if kept."""
    from render_bridge.recon.fit import latest_checkpoint

    return latest_checkpoint(plain_ckpt_dir(d, args))


def scene_assets(args, bank, i: int, timings: dict, plain: bool = True):
    """(scene folder, capture, plain scene or None if not `plain`) of scenario i, built and cached on first use.
    `timings` gains per-scene seconds under capture_s / fit_s."""
    from render_bridge.cameras import RigConfig
    from render_bridge.procedural_world import WorldConfig
    from render_bridge.recon.capture import LoggedCapture, capture_log
    from render_bridge.recon.fit import fit
    from render_bridge.recon.model import ReconScene

    d = scene_dir(args, bank, i)
    dev = device_of(args)
    if os.path.exists(os.path.join(d, "capture", "capture.json")):
        cap = LoggedCapture.load(os.path.join(d, "capture"))
    else:
        t0 = time.perf_counter()
        cap = capture_log(bank, i, RigConfig("front", args.width, args.height), WorldConfig(target_gaussians=args.gaussians),
                          stride=args.stride, device=dev, max_frames=args.max_frames)  # fmt: skip
        t1 = time.perf_counter()
        tmp, final = os.path.join(d, f"capture.tmp{os.getpid()}"), os.path.join(d, "capture")
        cap.save(tmp)
        if os.path.exists(final):  # a capture an interrupted run left without capture.json
            shutil.rmtree(final)
        os.replace(tmp, final)
        timings.setdefault("capture_s", []).append(time.perf_counter() - t0)
        log(
            f"scenario {i}: captured {cap.num_frames} frames in {t1 - t0:.1f} s (+{time.perf_counter() - t1:.1f} s writing)"
        )
    if not plain:
        return d, cap, None
    path = os.path.join(d, f"plain_it{args.fit_iters}.pt")
    if os.path.exists(path):
        scene = ReconScene.load(path, device=dev)
    else:
        scene = fit(cap, fit_cfg(args), ckpt_dir=plain_ckpt_dir(d, args), progress=not args.no_progress, device=dev)
        scene.save(path + ".tmp")
        os.replace(path + ".tmp", path)
        timings.setdefault("fit_s", []).append(scene.meta["fit_seconds"])
        log(f"scenario {i}: plain fit {args.fit_iters} steps in {scene.meta['fit_seconds']:.1f} s, "
            f"{scene.num_gaussians} Gaussians, val PSNR {scene.meta['val_psnr'] or float('nan'):.2f} dB")  # fmt: skip
    return d, cap, scene


def cached(args, bank, i: int, mode: str | None = None) -> bool:
    """Whether scenario i's plain fit (and, with `mode`, its restorer pairs of that mode) are in the cache."""
    d = scene_dir(args, bank, i)
    ok = os.path.exists(os.path.join(d, "capture", "capture.json"))
    if mode is None or mode == "oracle":
        ok = ok and os.path.exists(os.path.join(d, f"plain_it{args.fit_iters}.pt"))
    return ok and (mode is None or os.path.exists(pairs_path(d, args, mode)))


def pairs_path(d: str, args, mode: str) -> str:
    tag = f"pairs_{mode}_it{args.fit_iters}_" + (f"sp{args.sparse_every}_ut{args.undertrain}" if mode == "paper"
                                                 else f"off{args.offsets}_fs{args.frame_stride}")  # fmt: skip
    return os.path.join(d, tag.replace(",", "-") + ".npz")


def scene_pairs(args, bank, i: int, mode: str, timings: dict):
    """(restorer pairs of `mode` for scenario i, its capture), built and cached on first use."""
    from render_bridge.recon.pairs import RestorePairs, oracle_pairs, paper_pairs

    d, cap, scene = scene_assets(args, bank, i, timings, plain=mode == "oracle")
    path = pairs_path(d, args, mode)
    if os.path.exists(path):
        return RestorePairs.load(path), cap
    t0 = time.perf_counter()
    if mode == "paper":
        p = paper_pairs(cap, fit_cfg(args), [int(k) for k in floats(args.sparse_every, "--sparse-every")],
                        floats(args.undertrain, "--undertrain"), device=device_of(args))  # fmt: skip
    else:
        p = oracle_pairs(scene, bank, i, floats(args.offsets, "--offsets"), args.frame_stride)
    p.save(path + ".tmp.npz")
    os.replace(path + ".tmp.npz", path)
    timings.setdefault(f"pairs_{mode}_s", []).append(time.perf_counter() - t0)
    log(f"scenario {i}: {len(p)} {mode} pairs in {time.perf_counter() - t0:.1f} s")
    return p, cap


def floats(text: str, name: str) -> tuple:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ValueError(f"{name} must be comma-separated numbers, got {text!r}") from None


def cached_json(path: str, make):
    """JSON at `path`, or make() written there (atomically) first."""
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    value = make()
    with open(path + ".tmp", "w") as f:
        json.dump(value, f, default=float)
    os.replace(path + ".tmp", path)
    return value
