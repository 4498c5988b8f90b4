#!/usr/bin/env bash
# DriveRestorer + progressive refinement on the GPU (issue 11), sized for one ~420 s call on a fresh H200
# (gsplat JIT-compiles ~100 s first): the (a) plain / (b) restored renders / (c) refined PSNR/SSIM table at
# 0/1/2/3 m and along cousins on held-out scenes, for the paper- and oracle-mode restorers, plus the control
# (the same refinement rounds without pseudo-views), restorer training time, restore speed, refinement time.
#
#   BUDGET_S=420 OUT=/some/dir bash benchmarks/gpu_restore.sh    # H200; everything under $OUT/restore/, + $OUT/restore.tgz
#   OUT=/tmp/o bash benchmarks/gpu_restore.sh --tiny               # CPU smoke run of every entry point
#
# Run from the repo root with torch (CUDA), jax, diffusers, gsplat, plyfile importable; TORCH_EXTENSIONS_DIR
# (default ./.torch_extensions) holds gsplat's build. Every scene is captured and fitted ONCE, by one process,
# into the work folder $RESTORE_WORK (default $TMPDIR/gpu_restore_work); later phases only read it.
#   t=0      warm-up (gsplat / nvdiffrast JIT build) + restore speed (untrained UNet of the same shape), and
#   phase A  `recon prepare` of the train scenes (capture, plain fit, paper + oracle pairs) and `recon
#            eval-restore` of the held-out scenes (capture, plain fit, table (a)), PAR processes each; their
#            CPU-side start (imports, banks, worlds) overlaps the build, which they then wait for.
#   phase B  restorer training, paper and oracle at once, each stopping itself at --max-seconds with a
#            checkpoint; meanwhile the control refinement of the held-out scenes.
#   phase C  refinement of the held-out scenes with both restorers (rounds continue the plain fit).
#   phase D  eval-restore: the full table per scene (JSON rewritten after every scene); online restoration.
#   summary  summary.json (merged table, gains vs plain and vs the control, timings), restore.tgz.
# Phases B-D split the time left after A (B 40%, C 60% of the rest, D the remainder, 15 s kept for the
# summary); after A they use --cached-only (a scene A did not finish is skipped, not rebuilt); every process runs under `timeout` at its phase's end. Knobs: NT, NH (scenes), PAR (processes
# per phase), FIT_ITERS, R_STEPS (restorer steps; training stops earlier at its time budget), REF_ITERS (fit
# steps per refine round), REF_RESTORE_STEPS (DDIM steps of the pseudo-views, 0 = the restorer's 8),
# REF_WEIGHT, REF_LR (means' rate x the plain fit's final one), CHANNELS, BUDGET_S.
set -uo pipefail
TINY=0
[[ "${1:-}" == "--tiny" ]] && TINY=1
OUT=${OUT:-/tmp/out}
R="$OUT/restore"
W=${RESTORE_WORK:-${TMPDIR:-/tmp}/gpu_restore_work}
mkdir -p "$R/logs" "$R/parts" "$W"
PY=${PYTHON:-python3}
export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
export TORCH_EXTENSIONS_DIR="${TORCH_EXTENSIONS_DIR:-$PWD/.torch_extensions}"
export JAX_COMPILATION_CACHE_DIR="$W/jax_cache"  # CTG cousins compile once, not once per process
T0=$(date +%s)

if [[ $TINY == 1 ]]; then
  export CUDA_VISIBLE_DEVICES="" OMP_NUM_THREADS=1
  NT=${NT:-1}; NH=${NH:-2}; PAR=${PAR:-2}; PAR_T=${PAR_T:-1}
  SIZE="--width 32 --height 16 --stride 8 --max-frames 8 --gaussians 3000"
  FIT="--fit-iters ${FIT_ITERS:-20} --max-points 1500"
  RTRAIN="--steps ${R_STEPS:-6} --batch-size 4 --channels ${CHANNELS:-8,16} --sample-steps 2 --log-every 2"
  REFINE="--iterations ${REF_ITERS:-5} --frame-stride 3 --cousins 1"
  EVAL="--cousins 1 --restore-steps 0,1"; SPEED_SIZES="16x32 32x32"; SPEED_N=8; ONLINE_ENVS=2; BUDGET_S=${BUDGET_S:-1500}
else
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}  # ~10 processes share 16 cores
  NT=${NT:-6}; NH=${NH:-8}; PAR=${PAR:-4}; PAR_T=${PAR_T:-3}
  SIZE="--width 160 --height 96 --stride 2"
  FIT="--fit-iters ${FIT_ITERS:-500}"
  RTRAIN="--steps ${R_STEPS:-3000} --batch-size 32 --channels ${CHANNELS:-32,64,128,128} --sample-steps 8 --log-every 100"
  REFINE="--iterations ${REF_ITERS:-100} --frame-stride 2 --cousins 2"
  EVAL="--cousins 2 --restore-steps 0,1"; SPEED_SIZES="128x128 96x160"; SPEED_N=256; ONLINE_ENVS=64; BUDGET_S=${BUDGET_S:-420}
fi
REFINE="$REFINE --restore-steps ${REF_RESTORE_STEPS:-0} --weight ${REF_WEIGHT:-0.5} --lr-means-scale ${REF_LR:-1}"
CHANNELS_USED=$(sed 's/.*--channels \([^ ]*\).*/\1/' <<< "$RTRAIN")
split() {  # split N K: K comma-separated lists of 0..N-1, round robin (empty ones dropped)
  local n=$1 k=$2 p i list
  for (( p = 0; p < k; p++ )); do list=""; for (( i = p; i < n; i += k )); do list+="${list:+,}$i"; done; [[ -n $list ]] && echo "$list"; done
}
HPARTS=$(split "$NH" "$PAR")
TPARTS=$(split "$NT" "$PAR_T")
CLI="$PY -m agents.cli recon"
HELD="$SIZE $FIT --split heldout --num $NH --no-progress"
TRAIN="$SIZE $FIT --split train --num $NT --no-progress"
CACHED="--cached-only"  # after phase A: scenes it did not finish are skipped, not rebuilt on a later phase's time
now() { echo $(( $(date +%s) - T0 )); }
say() { echo "[gpu_restore] $* (t=$(now) s)" | tee -a "$R/logs/phases.log"; }
PIDS=""
JAXP=${JAX_PLATFORMS-cpu}  # the recon commands use JAX only for banks and CTG cousins: no GPU context for it
run() {  # run END NAME CMD...: in the background under `timeout` until END s after the start, logged
  local end=$1 name=$2; shift 2
  local t=$(( end - $(now) ))
  if (( t < 5 )); then say "skip $name: its phase has no time left"; return 0; fi
  ( if [[ -n $JAXP ]]; then export JAX_PLATFORMS=$JAXP; else unset JAX_PLATFORMS; fi
    timeout "$t" "$@" < /dev/null > "$R/logs/$name.log" 2>&1; rc=$?
    echo "[gpu_restore] $name rc=$rc at $(( $(date +%s) - T0 )) s" | tee -a "$R/logs/phases.log" ) &
  PIDS="$PIDS $!"
}
wait_phase() { for p in $PIDS; do wait "$p"; done; PIDS=""; }
restorers() { local m out=""; for m in paper oracle; do [[ -f "$W/restorer_$m/restorer.json" ]] && out+=" --restorer $m=$W/restorer_$m"; done; echo "$out"; }

say "tiny=$TINY out=$R work=$W budget=${BUDGET_S}s held-out=$NH train=$NT par=$PAR"
$PY - > "$R/env.json" 2>> "$R/logs/env.log" <<'EOF'
import json, platform, torch
info = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.cuda.is_available()}
if torch.cuda.is_available():
    info["device"] = torch.cuda.get_device_name(0)
for mod in ("diffusers", "gsplat", "jax", "nvdiffrast"):
    try:
        info[mod] = getattr(__import__(mod), "__version__", "present")
    except ImportError as e:
        info[mod] = f"missing: {e}"
print(json.dumps(info))
EOF
cat "$R/env.json"

# restore speed beside the build (no gsplat needed)
SPEED_SIZES="$SPEED_SIZES" SPEED_N=$SPEED_N CHANNELS="$CHANNELS_USED" R="$R" timeout 120 $PY - > "$R/logs/speed.log" 2>&1 <<'EOF' &
"""Restore speed (images/s) at each size and DDIM step count, untrained weights of the trained restorer's shape."""
import dataclasses, json, os
import torch
from render_bridge.recon.restorer import DriveRestorer, RestorerConfig, measure_restore_speed

dev = "cuda" if torch.cuda.is_available() else "cpu"
out = {"device": torch.cuda.get_device_name(0) if dev == "cuda" else "cpu", "restore": []}
n = int(os.environ["SPEED_N"])
for size in os.environ["SPEED_SIZES"].split():
    h, w = (int(v) for v in size.split("x"))
    r = DriveRestorer(RestorerConfig(image_size=(h, w), block_channels=tuple(int(c) for c in os.environ["CHANNELS"].split(",")), sample_steps=8), device=dev)
    for steps in (8, 2, 1):
        out["restore"].append(measure_restore_speed(r, n, min(64, n), steps=steps))
        print(out["restore"][-1], flush=True)
json.dump(out, open(os.path.join(os.environ["R"], "speed.json"), "w"), indent=2)
EOF

# t=0: the gsplat (and nvdiffrast) JIT build in one process, to completion before any other process imports
# gsplat: processes that load the extension while it builds race on its build folder (seen on the H200: the
# build and 6 of 7 phase-A processes failed). Reinstalling the gsplat wheel (new file times) triggers a rebuild.
if [[ $TINY == 0 ]]; then
  ( timeout 300 $PY - > "$R/logs/warmup.log" 2>&1 <<'EOF'
"""Build / load gsplat's CUDA extension (and nvdiffrast's, when installed) once, before the phases use them."""
import time, torch
t0 = time.time()
from render_bridge.recon import raster
from render_bridge.recon.sky_nvdiffrast import CubeSky
dev = torch.device("cuda")
n = 16
rgb, alpha, _ = raster.rasterize(torch.randn(n, 3, device=dev) + torch.tensor([0, 0, 5.0], device=dev),
                                 torch.nn.functional.normalize(torch.randn(n, 4, device=dev), dim=-1), torch.full((n, 3), 0.1, device=dev),
                                 torch.full((n,), 0.5, device=dev), torch.rand(n, 3, device=dev), torch.eye(4, device=dev)[None],
                                 torch.tensor([[[20.0, 0, 16], [0, 20.0, 16], [0, 0, 1]]], device=dev), 32, 32)
print(f"gsplat ready in {time.time() - t0:.1f} s", flush=True)
sky = CubeSky(8, device=dev)
print("sky backend", sky.active_backend(), sky.background(torch.eye(4, device=dev)[None], torch.tensor([[[20.0, 0, 16], [0, 20.0, 16], [0, 0, 1]]], device=dev), 32, 32).shape,
      f"{time.time() - t0:.1f} s", flush=True)
EOF
  echo "[gpu_restore] warmup rc=$? at $(( $(date +%s) - T0 )) s" | tee -a "$R/logs/phases.log" )
fi

# Phase A: every scene captured and fitted once; train scenes also get their restorer pairs; table (a)
A_END=$(( BUDGET_S * 55 / 100 ))
k=0; for part in $TPARTS; do
  run $A_END "prep_train_$k" $CLI prepare --work "$W" $TRAIN --scenarios "$part" --pairs paper,oracle --json "$R/parts/prep_train_$k.json"
  k=$(( k + 1 )); done
k=0; for part in $HPARTS; do
  run $A_END "plain_$k" $CLI eval-restore --work "$W" $HELD --scenarios "$part" $EVAL --json "$R/parts/plain_$k.json"
  k=$(( k + 1 )); done
wait_phase
say "phase A done"

# Phase B: both restorers train at once (each stops itself with a checkpoint), the control refinement beside them
LEFT=$(( BUDGET_S - 15 - $(now) ))
B_END=$(( $(now) + LEFT * 40 / 100 ))
TRAIN_S=$(( B_END - $(now) - (TINY ? 60 : 35) ))  # process start, pair loading and the final save fit in the rest
(( TRAIN_S < 10 )) && TRAIN_S=10
say "phase B: restorer training for up to $TRAIN_S s each"
for mode in paper oracle; do
  run $B_END "train_$mode" $CLI train-restorer --mode $mode --work "$W" --out "$W/restorer_$mode" $TRAIN $CACHED $RTRAIN --max-seconds $TRAIN_S --json "$R/parts/train_$mode.json"
done
k=0; for part in $HPARTS; do
  run $B_END "refine_control_$k" $CLI refine --work "$W" $HELD $CACHED --scenarios "$part" --control $REFINE --json "$R/parts/refine_control_$k.json"
  k=$(( k + 1 )); done
wait_phase
say "phase B done; restorers:$(restorers)"

# Phase C: refinement with each trained restorer (the same rounds as the control, plus pseudo-views)
C_END=$(( $(now) + (BUDGET_S - 15 - $(now)) * 60 / 100 ))
if [[ -n "$(restorers)" ]]; then
  k=0; for part in $HPARTS; do
    run $C_END "refine_$k" $CLI refine --work "$W" $HELD $CACHED --scenarios "$part" $(restorers) $REFINE --json "$R/parts/refine_$k.json"
    k=$(( k + 1 )); done
  wait_phase
fi
say "phase C done"

# Phase D: the full table, per scene; online restoration beside it
D_END=$(( BUDGET_S - 15 ))
k=0; for part in $HPARTS; do
  run $D_END "eval_$k" $CLI eval-restore --work "$W" $HELD $CACHED --scenarios "$part" $(restorers) $EVAL --json "$R/parts/eval_$k.json"
  k=$(( k + 1 )); done
cat > "$W/online.py" <<'EOF'
"""Camera env steps/s with and without online restoration (procedural scenes, the trained restorer's size)."""
import json, os
import jax, jax.numpy as jnp
from jaxsim.env import DrivingEnv, EnvConfig
from jaxsim.procedural import generate_bank
from jaxsim.wrappers import AutoResetWrapper, VmapWrapper
from render_bridge.camera_env import CameraObsEnv
from render_bridge.cameras import RigConfig
from render_bridge.procedural_world import build_scene_bank
from render_bridge.recon.online import RestoringRenderer, online_throughput
from render_bridge.recon.restorer import DriveRestorer
from render_bridge.renderer import Renderer

W, R = os.environ["W"], os.environ["R"]
path = next((os.path.join(W, f"restorer_{m}") for m in ("paper", "oracle") if os.path.exists(os.path.join(W, f"restorer_{m}", "restorer.json"))), None)
out = {}
if path:
    trained = DriveRestorer.load(path)
    h, w = trained.cfg.image_size
    num = int(os.environ["ONLINE_ENVS"])
    bank = generate_bank(4, split="heldout", seed=0)
    env = VmapWrapper(AutoResetWrapper(DrivingEnv(EnvConfig(obs="none"))), num)
    params = env.default_params(bank)
    renderer = Renderer(build_scene_bank(bank), RigConfig("front", w, h))
    action, key = jnp.full((num, 2), 30, jnp.int32), jax.random.PRNGKey(0)
    out["plain"] = online_throughput(CameraObsEnv(env, renderer), params, key, action, steps=3)
    out["restored"] = online_throughput(CameraObsEnv(env, RestoringRenderer(renderer, trained)), params, key, action, steps=2)
    out["slowdown"] = out["plain"]["env_steps_per_s"] / out["restored"]["env_steps_per_s"]
print(out, flush=True)
json.dump(out, open(os.path.join(R, "parts", "online.json"), "w"), indent=2)
EOF
export ONLINE_ENVS W R
JAXP_SAVED=$JAXP; JAXP=""  # the camera env steps JAX and renders torch on the same GPU
run $D_END online $PY "$W/online.py"
JAXP=$JAXP_SAVED
wait_phase
say "phase D done"

R="$R" T0=$T0 timeout 60 $PY - > "$R/logs/summary.log" 2>&1 <<'EOF'
"""Merge the per-process JSON files into summary.json: the mean (a)/(b)/(c) table, the PSNR gain of each column
over the plain reconstruction and over the control, restorer training, refinement, capture and fit times."""
import glob, json, os, time
import numpy as np
from agents.commands.recon_restore import _mean_table

R = os.environ["R"]
P = os.path.join(R, "parts")
load = lambda p: json.load(open(p)) if os.path.exists(p) else None  # noqa: E731
s = {"total_seconds_so_far": time.time() - float(os.environ["T0"]), "parts": "parts/*.json", "logs": "logs/*.log"}
scenes, seen = [], set()
for path in sorted(glob.glob(os.path.join(P, "eval_*.json"))) + sorted(glob.glob(os.path.join(P, "plain_*.json"))):
    for sc in (load(path) or {}).get("scenes", []):  # full tables first; plain-only ones fill in what they miss
        if sc["scenario"] not in seen:
            seen.add(sc["scenario"])
            scenes.append(sc)
if scenes:
    # each column over the scenes that have it (a stopped run may miss some), the plain column on the same scenes
    s["heldout_scenes"] = sorted(sc["scenario"] for sc in scenes)
    s["mean"], s["psnr_gain_vs_plain"], s["scenes_per_column"] = {}, {}, {}
    for c in dict.fromkeys(k for sc in scenes for k in sc if k != "scenario"):
        have = [sc for sc in scenes if c in sc]
        s["mean"][c], s["scenes_per_column"][c] = _mean_table([sc[c] for sc in have]), len(have)
        if c != "plain":
            base = _mean_table([sc["plain"] for sc in have])
            s["psnr_gain_vs_plain"][c] = {r: s["mean"][c][r]["psnr"] - base[r]["psnr"] for r in s["mean"][c] if r in base}
    s["psnr_gain_vs_control"] = {}  # pseudo-views' own effect: refined vs the control, on the scenes with both
    for c in s["mean"]:
        have = [sc for sc in scenes if c in sc and "refined_control" in sc]
        if c.startswith("refined_") and c != "refined_control" and have:
            a, b = _mean_table([sc[c] for sc in have]), _mean_table([sc["refined_control"] for sc in have])
            s["psnr_gain_vs_control"][c] = {r: a[r]["psnr"] - b[r]["psnr"] for r in a if r in b}
for mode in ("paper", "oracle"):
    t = load(os.path.join(P, f"train_{mode}.json"))
    if t:
        s[f"train_{mode}"] = {k: t.get(k) for k in ("pairs", "pair_kinds", "params", "steps", "steps_asked", "stopped_early",
                                                    "train_seconds", "train_images_per_s", "loss_first", "loss_last", "data_seconds")}
per = {}
for path in glob.glob(os.path.join(P, "*.json")):
    for k, v in ((load(path) or {}).get("timings") or {}).items():
        if isinstance(v, dict) and "total" in v:
            agg = per.setdefault(k, {"total": 0.0, "n": 0, "max": 0.0})
            agg["total"] += v["total"]; agg["n"] += v["n"]; agg["max"] = max(agg["max"], v.get("max", 0.0))
s["seconds_per_scene"] = {k: {"mean": v["total"] / v["n"], "max": v["max"], "n": v["n"]} for k, v in sorted(per.items()) if v["n"]}
s["speed"] = load(os.path.join(R, "speed.json"))
s["online"] = load(os.path.join(P, "online.json"))
json.dump(s, open(os.path.join(R, "summary.json"), "w"), indent=2)
print(json.dumps({k: s[k] for k in ("mean", "psnr_gain_vs_plain", "psnr_gain_vs_control", "scenes_per_column") if k in s}, indent=1))
EOF
say "summary rc=$?"
tar -czf "$OUT/restore.tgz" -C "$OUT" restore && say "wrote $OUT/restore.tgz ($(du -h "$OUT/restore.tgz" | cut -f1))"
cat "$R/logs/summary.log"
