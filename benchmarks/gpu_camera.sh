#!/usr/bin/env bash
# Camera policies on the H200 (issue 9): `bench train --obs camera` (the 128x128, 200k-Gaussian
# target and the experiment's 64x64 setting), the renderer's own images/s (the floor), and the
# camera experiment `reconrl train --config configs/camera.yaml`. Results in $OUT/cam/.
#
#   OUT=/some/dir bash benchmarks/gpu_camera.sh [bench|train|all]
# train knobs: TRAIN_SET="--set ppo.num_updates=2000" (both trainings, same budget),
# TRAIN_TIMEOUT_S (stop the camera run; it checkpoints every chunk), RESUME=1 (continue the
# runs under /tmp/runs on a warm machine instead of starting fresh: a longer run spread over
# consecutive calls; pass the same TRAIN_SET every time, a resume refuses changed keys).
# Needs gsplat importable (a wheel: JIT-compiles its CUDA extension on first use; keep
# TORCH_EXTENSIONS_DIR outside the copied tree so later calls on a warm machine reuse the build).
set -uo pipefail
WHAT=${1:-all}
OUT=${OUT:-/tmp/out}
C="$OUT/cam"
mkdir -p "$C"
PY=${PYTHON:-python3}
export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
export TORCH_EXTENSIONS_DIR="${TORCH_EXTENSIONS_DIR:-$PWD/.torch_extensions}"
CLI="$PY -m agents.cli"
FRESH=--fresh
[[ ${RESUME:-0} == 1 ]] && FRESH=
if [[ $WHAT == bench || $WHAT == all ]]; then
  $CLI bench render --batch-sizes 1024 --max-batch 1024 --sizes 128 --gaussians 200000 --repeats 5 --env-steps 10 \
    --json "$C/render_128_200k.json" 2>&1 | grep -v Warning | tail -6
  $CLI bench train --obs camera --num-envs 1024 --width 128 --height 128 --gaussians 200000 --updates 3 \
    --json "$C/bench_train_camera_128_200k.json" 2>&1 | grep -v Warning | tail -3
  $CLI bench train --obs camera --num-envs 512 --width 64 --height 64 --gaussians 40000 --updates 3 \
    --json "$C/bench_train_camera_64_40k.json" 2>&1 | grep -v Warning | tail -3
  # the experiment's PPO setting (configs/camera.yaml: 3 seeds x 64 envs, 4 epochs, DAA), float32 vs bfloat16 encoder
  for dt in float32 bfloat16; do
    $CLI bench train --obs camera --num-envs 64 --seeds 3 --epochs 4 --daa --width 64 --height 64 --gaussians 40000 \
      --updates 5 --compute-dtype $dt --json "$C/bench_train_camera_experiment_$dt.json" 2>&1 | grep -v Warning | tail -2
  done
fi
if [[ $WHAT == train || $WHAT == all ]]; then
  # The vector policy with the same scenes, recipe and budget: the reference rows.
  ( timeout "${TRAIN_TIMEOUT_S:-100000}" $CLI train --config configs/camera.yaml --set env.obs=vector --set network.encoder=mlp \
      --out /tmp/runs/camera_vector_ref $FRESH --json "$C/vector_ref_results.json" ${TRAIN_SET:-} > "$C/vector_ref.log" 2>&1
    cp /tmp/runs/camera_vector_ref/results.md "$C/vector_ref_results.md" 2>/dev/null ) &
  timeout "${TRAIN_TIMEOUT_S:-100000}" $CLI train --config configs/camera.yaml --out /tmp/runs/camera $FRESH \
    --json "$C/camera_results.json" ${TRAIN_SET:-} > "$C/train.log" 2>&1
  echo "camera train rc=$?"
  wait
  cp /tmp/runs/camera/results.md "$C/camera_results.md" 2>/dev/null
  cp /tmp/runs/camera/log.jsonl "$C/camera_log.jsonl" 2>/dev/null
fi
