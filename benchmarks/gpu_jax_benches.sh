#!/usr/bin/env bash
# The JAX throughput benchmarks of one source tree, for before/after comparisons in one GPU
# call (run each tree in turn on the same machine, alone on the GPU):
#   `bench sim` at 65,536 envs (no observation / vector observation) and the vector
#   `bench train` at 16,384 envs.
#
#   SRC=/path/to/tree TAG=after OUT=/dir [WHAT=sim|train|all] bash benchmarks/gpu_jax_benches.sh   -> $OUT/jax/<TAG>_*.json
set -uo pipefail
SRC=${SRC:-$PWD}
TAG=${TAG:-now}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT/jax"
export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
WHAT=${WHAT:-all}
cd "$SRC" || exit 1
[[ $WHAT == train ]] || PYTHONPATH="$SRC:${PYTHONPATH:-}" python3 -m agents.cli bench sim --envs 65536 --obs none,vector \
  --json "$OUT/jax/${TAG}_sim.json" > "$OUT/jax/${TAG}_sim.log" 2>&1
echo "[$TAG] bench sim rc=$?"
[[ $WHAT == sim ]] || PYTHONPATH="$SRC:${PYTHONPATH:-}" python3 -m agents.cli bench train --num-envs 16384 --updates 20 \
  --json "$OUT/jax/${TAG}_train.json" > "$OUT/jax/${TAG}_train.log" 2>&1
echo "[$TAG] bench train rc=$?"
