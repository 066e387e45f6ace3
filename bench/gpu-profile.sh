#!/usr/bin/env bash
set -u
OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
# Nsight Compute summary of the kernels behind the slowest GPU rows (QSGD encode, EF top-k, DropIT
# pack) on a lent GPU machine: bash bench/gpu-profile.sh (needs .device from device-pack.sh).
bash .device/unpack.sh >/dev/null 2>&1
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
echo "ncu: $NCU"
cat > ./.prof.js <<'JS'
const { cudaBackend } = require('./dist/lib/ops/runtime');
const b = cudaBackend('prof');
(async () => {
  await b.bench('qsgd-encode', 2 ** 26, 127, 512, 0, 1);
  await b.bench('eftopk', 2 ** 26, 0.01, 0, 0, 1);
  await b.bench('dropit-pack', 2 ** 26, 0.9, 0, 0, 1);
})();
JS
timeout 200 $NCU --target-processes all -k regex:'k_encode_fused|k_pass_threshold|k_set_bits|DeviceSelect|k_cand_hist' -c 12 --section SpeedOfLight --section Occupancy --section WarpStateStats --section LaunchStats --clock-control none node ./.prof.js > $OUT/ncu.txt 2>&1
grep -E "k_encode_fused|k_pass_threshold|k_set_bits|Select|k_cand_hist|Duration|Memory Throughput|Compute \(SM\) Throughput|Achieved Occupancy|Registers Per|Stall|Warp Cycles Per Issued|Block Limit" $OUT/ncu.txt | head -120
