#!/usr/bin/env bash
# One H200 call for the camera experiment, the reconstruction benchmark and the restorer
# benchmark side by side (they share the GPU, so their timings include that sharing).
#   OUT=/dir bash benchmarks/gpu_all.sh      -> $OUT/results.tgz (+ logs)
set -uo pipefail
OUT=${OUT:-/tmp/out}
export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1 TORCH_EXTENSIONS_DIR="$PWD/.torch_extensions"
mkdir -p "$OUT/cam" "$OUT/logs"
T0=$(date +%s)
python3 - <<'PY' > "$OUT/logs/gsplat_warm.log" 2>&1
import torch, time
t = time.time()
from gsplat import rasterization
m = torch.zeros(1, 3, device="cuda"); m[0, 2] = 5
q = torch.tensor([[1.0, 0, 0, 0]], device="cuda"); s = torch.full((1, 3), 0.5, device="cuda")
rasterization(m, q, s, torch.ones(1, device="cuda"), torch.ones(1, 3, device="cuda"), torch.eye(4, device="cuda")[None],
              torch.tensor([[[50.0, 0, 16], [0, 50.0, 16], [0, 0, 1]]], device="cuda"), 32, 32)
print("gsplat ready in", time.time() - t)
PY
echo "gsplat warm at $(( $(date +%s) - T0 )) s"
LEFT=$(( ${TOTAL_S:-520} - ($(date +%s) - T0) ))
( timeout $(( LEFT - 15 )) python3 -m agents.cli train --config configs/camera.yaml --out /tmp/runs/camera --fresh \
    --json "$OUT/cam/camera_results.json" > "$OUT/logs/camera_train.log" 2>&1; echo "camera rc=$?" ) &
( OUT=$OUT timeout $(( LEFT - 15 )) bash benchmarks/gpu_recon.sh > "$OUT/logs/recon.log" 2>&1; echo "recon rc=$?" ) &
( OUT=$OUT BUDGET_S=$(( LEFT - 30 )) timeout $(( LEFT - 15 )) bash benchmarks/gpu_restore.sh > "$OUT/logs/restore.log" 2>&1; echo "restore rc=$?" ) &
wait
cp /tmp/runs/camera/results.md /tmp/runs/camera/log.jsonl "$OUT/cam/" 2>/dev/null
echo "all done at $(( $(date +%s) - T0 )) s"
cd "$OUT" && tar czf results.tgz --exclude='*.png' --exclude=results.tgz cam recon restore logs 2>/dev/null
ls -la "$OUT"
