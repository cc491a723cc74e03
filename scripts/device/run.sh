#!/usr/bin/env bash
# Run on the GPU machine (carry .device/ from scripts/device/pack.sh):
# unpacks Go and the vendored modules, builds with -tags gpu against the
# CUDA toolkit there (CUDA 13: through kernels/cuda13shim), runs the GPU
# parity tests and perturb bench --json --device gpu, prints a short table
# and writes everything under $OUT.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/perturb-device}
mkdir -p "$OUT"
work=$(mktemp -d)
tar -C "$work" -xJf .device/go.tar.xz
tar -C . -xJf .device/vendor.tar.xz
export GOROOT="$work/go" PATH="$work/go/bin:$PATH" GOFLAGS=-mod=vendor GOTOOLCHAIN=local GOCACHE="$work/cache"
cuda=""
for d in /usr/local/cuda /usr/local/cuda-13* /usr/local/cuda-12* /opt/cuda; do
	[ -f "$d/include/cuda.h" ] && { cuda=$d; break; }
done
[ -n "$cuda" ] || { echo "no CUDA toolkit found (cuda.h)" | tee "$OUT/error.txt"; exit 1; }
lib=$cuda/lib64
[ -d "$cuda/targets/x86_64-linux/lib" ] && lib="$lib -L$cuda/targets/x86_64-linux/lib"
libcuda=$(dirname "$(ldconfig -p | awk '/libcuda.so.1 /{print $NF; exit}')" 2>/dev/null)
export CGO_CFLAGS="-I$PWD/kernels/cuda13shim -I$cuda/include"
export CGO_LDFLAGS="-L${lib// / -L} -L$cuda/lib64/stubs ${libcuda:+-L$libcuda}"
export LD_LIBRARY_PATH="$cuda/lib64:${LD_LIBRARY_PATH:-}"
{ nvidia-smi -L; go version; echo "CUDA at $cuda"; } 2>&1 | tee "$OUT/env.txt"
go build -tags gpu -o "$OUT/perturb-gpu" ./cmd/perturb 2>&1 | tee "$OUT/build.txt" || exit 1
go test -tags gpu -count=1 -v ./kernels/cudev/ 2>&1 | tee "$OUT/parity.txt"
go test -tags gpu -count=1 -v -run 'GPUTrialPath' ./trials/ 2>&1 | tee -a "$OUT/parity.txt"
go test -count=1 ./kernels/ ./kernels/cuda13shim/ 2>&1 | tee -a "$OUT/parity.txt"
data=""
[ -d .device/fashion-mnist ] && data="--data .device/fashion-mnist"
"$OUT/perturb-gpu" bench --json --device gpu $data >"$OUT/bench.json" 2>"$OUT/bench.log"
echo "== summary"
grep -E '^(--- |ok|FAIL)' "$OUT/parity.txt"
python3 - "$OUT/bench.json" <<'PY' || cat "$OUT/bench.log"
import json, sys
b = json.load(open(sys.argv[1]))["gpu"]
print(f"{b['device']}: gemm {b['gemm_gflops']:.0f} GFLOP/s float32, {b.get('gemm_gflops_tf32', 0):.0f} TF32")
print(f"{'model':9} {'K':>5} {'trials/s':>10} {'eval GFLOP/s':>13} {'eval/gemm':>9}")
for m, r in b["models"].items():
    print(f"{m:9} {r['k']:5d} {r['trials_per_s_batched']:10.1f} {r['eval_gflops']:13.1f} {r['eval_over_gemm']:9.2f}")
PY
