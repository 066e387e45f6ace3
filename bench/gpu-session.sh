#!/usr/bin/env bash
# What one GPU session runs on a lent machine (see README "GPU"): unpack the carried node and
# node_modules (../shared/tools/device-pack.sh), check the carried builds load, run test/cuda,
# then the benchmark suite's GPU section with its PyTorch baselines. Logs go to $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
bash .device/unpack.sh 2>&1 | tail -3
export npm_config_nodedir=/usr
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv | tee "$OUT/gpu.txt"
if [ ! -f build-cuda/Release/gradcomp_cuda.node ] || [ "${REBUILD_CUDA:-0}" = 1 ]; then
  GRADCOMP_CUDA_ARCHS=90 node scripts/build-cuda.js 2>&1 | tail -3
fi
node -e 'const g=require("."); console.log(JSON.stringify(g.backendInfo().reasons))' | tee "$OUT/backend.txt"
if [ "${SKIP_TESTS:-0}" != 1 ]; then
  timeout "${TEST_TIMEOUT:-330}" node node_modules/jest/bin/jest.js test/cuda --runInBand ${JEST_ARGS:-} 2>&1 | tee "$OUT/jest.log" | grep -E "✓|✕|Tests:|●|Expected|Received|differ|at .*test/cuda|^\[" | head -150
fi
if [ "${SKIP_BENCH:-0}" != 1 ]; then
  node dist/bench/gpu.js ${BENCH_ARGS:-} 2>"$OUT/bench.err" | tee "$OUT/bench.md"
  cp bench/results/*h100*.json bench/results/*h200*.json "$OUT/" 2>/dev/null
  tail -5 "$OUT/bench.err"
fi
