#!/usr/bin/env bash
# Reconstruction benchmark on one GPU (H200), run from the repository root; <= 5 minutes.
# Writes JSON + PNG into "$OUT/recon/":
#   table.json        fit seconds (scene 0 and mean), Gaussians per scene, the novel-view
#                     PSNR/SSIM table over --scenes held-out procedural scenes at 0/1/2/3 m
#                     and along CTG cousins, camera-env frames/s reconstructed vs procedural
#   scene_K/          per-scene result.json and PNG grids (ground truth | recon | error)
#   sky.json          cube-map sky lookup cost and agreement, nvdiffrast vs torch, and one
#                     fit with each sky backend
#   gpu_tests.log     tests/test_recon_gpu.py (gsplat densifying fit, nvdiffrast vs torch lookup) if time is left
#   nvdiffrast_build.log, summary.json (what ran, exit codes, seconds)
# Needs: torch with CUDA, jax, the project's dependencies, and gsplat (1.5.3) importable
# (installed, or on PYTHONPATH). plyfile is not needed. nvdiffrast is optional: if the
# vendored archive is found (NVDIFFRAST_TGZ, shared/vendor/, vendor/ or ../shared/vendor/)
# it is built in the background while the table runs; if that fails the sky uses torch.
# RECON_ARGS is appended to both python calls (e.g. RECON_ARGS=--tiny OUT=/tmp/o for a CPU smoke run).
set -u
OUT="${OUT:-$PWD/out}"
R="$OUT/recon"
mkdir -p "$R"
PY="${PYTHON:-python3}"
export XLA_PYTHON_CLIENT_PREALLOCATE=false
export TORCH_EXTENSIONS_DIR="${TORCH_EXTENSIONS_DIR:-$PWD/.torch_extensions}"
SCENES="${SCENES:-8}"
T0=$(date +%s)
elapsed() { echo $(( $(date +%s) - T0 )); }

# 1. nvdiffrast, built in the background (the README's steps), guarded
NVD_STATUS="absent"
NVD_PID=""
if "$PY" -c "import nvdiffrast.torch" >/dev/null 2>&1; then
  NVD_STATUS="preinstalled"
else
  TGZ=""
  for c in "${NVDIFFRAST_TGZ:-}" shared/vendor/nvdiffrast-253ac4f.tar.gz vendor/nvdiffrast-253ac4f.tar.gz \
           ../shared/vendor/nvdiffrast-253ac4f.tar.gz; do
    if [ -n "$c" ] && [ -f "$c" ]; then TGZ="$c"; break; fi
  done
  if [ -n "$TGZ" ]; then
    BUILD="${TMPDIR:-/tmp}/recon_nvdiffrast_build"
    ( rm -rf "$BUILD" && mkdir -p "$BUILD" && tar xzf "$TGZ" -C "$BUILD" && cd "$BUILD/nvdiffrast" && \
      { MAX_JOBS=8 TORCH_CUDA_ARCH_LIST=9.0 timeout 200 "$PY" -m pip install -q --no-build-isolation --no-deps --no-index . || \
        MAX_JOBS=8 TORCH_CUDA_ARCH_LIST=9.0 timeout 200 "$PY" -m pip install -q --no-build-isolation --no-deps --no-index \
          --target "$BUILD/site" . ; } ) \
      > "$R/nvdiffrast_build.log" 2>&1 &
    NVD_PID=$!
    NVD_STATUS="building"
  else
    echo "nvdiffrast archive not found; sky uses torch" > "$R/nvdiffrast_build.log"
  fi
fi

# 2. the table: fits, novel views, camera env (time budget for the scene loop: 130 s)
timeout 215 "$PY" -m benchmarks.recon --out "$R" --part table --scenes "$SCENES" --time-budget 130 ${RECON_ARGS:-} 2>&1 | tee "$R/table.log"
TABLE_RC=${PIPESTATUS[0]}

# 3. wait for nvdiffrast (bounded), then the sky comparison in a fresh process
if [ -n "$NVD_PID" ]; then
  LEFT=$(( 245 - $(elapsed) )); [ "$LEFT" -lt 1 ] && LEFT=1
  ( sleep "$LEFT"; kill "$NVD_PID" 2>/dev/null ) & WATCH=$!
  if wait "$NVD_PID"; then NVD_STATUS="built"; else NVD_STATUS="build_failed"; fi
  kill "$WATCH" 2>/dev/null
  if [ -d "${TMPDIR:-/tmp}/recon_nvdiffrast_build/site" ]; then  # the --target fallback install
    export PYTHONPATH="${TMPDIR:-/tmp}/recon_nvdiffrast_build/site${PYTHONPATH:+:$PYTHONPATH}"
  fi
  "$PY" -c "import nvdiffrast.torch" >/dev/null 2>&1 || NVD_STATUS="${NVD_STATUS}_not_importable"
fi
LEFT=$(( 290 - $(elapsed) ))
SKY_RC="skipped"
if [ "$LEFT" -ge 45 ]; then
  ITERS=$(( LEFT >= 90 ? 1000 : 400 ))
  timeout $(( LEFT - 5 )) "$PY" -m benchmarks.recon --out "$R" --part sky --scenes 1 --iterations "$ITERS" ${RECON_ARGS:-} 2>&1 | tee "$R/sky.log"
  SKY_RC=${PIPESTATUS[0]}
fi
# 4. the GPU tests of the recon package, if time and pytest allow
TESTS_RC="skipped"
LEFT=$(( 295 - $(elapsed) ))
if [ "$LEFT" -ge 30 ] && "$PY" -c "import pytest" >/dev/null 2>&1; then
  timeout $(( LEFT - 3 )) "$PY" -m pytest -q -p no:cacheprovider -m gpu tests/test_recon_gpu.py > "$R/gpu_tests.log" 2>&1
  TESTS_RC=$?
fi
cat > "$R/summary.json" <<JSON
{"table_rc": $TABLE_RC, "sky_rc": "$SKY_RC", "gpu_tests_rc": "$TESTS_RC", "nvdiffrast": "$NVD_STATUS", "seconds": $(elapsed), "scenes": $SCENES}
JSON
cat "$R/summary.json"
