#!/usr/bin/env bash
# The whole GPU check in one command, on the GPU machine (carry .device/
# from scripts/device/pack.sh; about 8 minutes of device time):
#
#   1. unpack Go and the vendored modules, build with -tags gpu against the
#      CUDA toolkit there (CUDA 13: through kernels/cuda13shim);
#   2. the GPU tests: kernel and rounding parity (kernels/cudev), NVRTC for
#      the device's architecture, TestGPUTrialPath (trials);
#   3. perturb bench --json --device gpu (cuBLAS SGEMM, strict and TF32,
#      trials/s and eval GFLOP/s per model);
#   4. a real perturb run of configs/quickstart.toml with --device gpu and
#      with --device cpu, compared row by row (perturb compare, float32
#      tolerance);
#   5. the TF32 noise scan (perturb noise --device gpu, float32 against
#      tf32) on the logistic model and the convnet.
#
# Each step's log, the binary and the runs go to $WORK (default
# /tmp/perturb-device); $OUT (the device tool's folder, at most 8 files,
# default $WORK/out) receives results.json, results.md (a table),
# bench.json, noise.json and logs.tar.gz (every step's log). A failed step
# does not stop the later ones; the script exits non-zero when any failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
WORK=${WORK:-/tmp/perturb-device}
OUT=${OUT:-$WORK/out}
mkdir -p "$WORK" "$OUT"
: >"$WORK/steps.tsv"

# step NAME CMD...: run CMD, logging to $WORK/NAME.log, and record its
# status and wall seconds.
step() {
	local name=$1 t0 rc
	shift
	# ONLY="parity bench" runs just those steps (and the build).
	if [ -n "${ONLY:-}" ] && [ "$name" != build ] && [[ " $ONLY " != *" $name "* ]]; then
		return 0
	fi
	echo "== $name: $*"
	t0=$(date +%s.%N)
	"$@" >"$WORK/$name.log" 2>&1
	rc=$?
	printf '%s\t%d\t%s\n' "$name" "$rc" "$(python3 -c "import time; print(round(time.time() - $t0, 1))")" >>"$WORK/steps.tsv"
	tail -n 3 "$WORK/$name.log"
	return $rc
}

work=$(mktemp -d)
tar -C "$work" -xJf .device/go.tar.xz
tar -C . -xJf .device/vendor.tar.xz
export GOROOT="$work/go" PATH="$work/go/bin:$PATH" GOFLAGS=-mod=vendor GOTOOLCHAIN=local GOCACHE="$work/cache"
cuda=""
for d in ${CUDA_HOME:-} /usr/local/cuda /usr/local/cuda-13* /usr/local/cuda-12* /opt/cuda; do
	[ -f "$d/include/cuda.h" ] && { cuda=$d; break; }
done
[ -n "$cuda" ] || { echo "no CUDA toolkit found (cuda.h)" | tee "$OUT/results.md"; exit 1; }
lib=$cuda/lib64
[ -d "$cuda/targets/x86_64-linux/lib" ] && lib="$lib -L$cuda/targets/x86_64-linux/lib"
libcuda=$(dirname "$(ldconfig -p | awk '/libcuda.so.1 /{print $NF; exit}')" 2>/dev/null)
export CGO_CFLAGS="-I$PWD/kernels/cuda13shim -I$cuda/include"
export CGO_LDFLAGS="-L${lib// / -L} -L$cuda/lib64/stubs ${libcuda:+-L$libcuda}"
export LD_LIBRARY_PATH="$cuda/lib64:${LD_LIBRARY_PATH:-}"
# The carried data is part of Fashion-MNIST (pack.sh): accept its split
# sizes. Both devices of step 4 read the same folder.
export PERTURB_FASHION_PARTIAL=1 PERTURB_FASHION_MNIST="$PWD/.device/fashion-mnist"
{ nvidia-smi -L; go version; echo "CUDA at $cuda"; nproc; } 2>&1 | tee "$WORK/env.log"

bin="$WORK/perturb-gpu"
if ! step build go build -tags gpu -o "$bin" ./cmd/perturb; then
	cp "$WORK/build.log" "$OUT/"
	exit 1
fi
step parity go test -tags gpu -count=1 -v ./kernels/cudev/
step trialpath go test -tags gpu -count=1 -v -run 'GPUTrialPath' ./trials/
step cpu-tests go test -count=1 ./kernels/ ./kernels/cuda13shim/ ./kernels/cudaemu/
step bench sh -c "'$bin' bench --json --device gpu >'$WORK/bench.json'"
# Tuning K for the device: the batched trials and the evaluation with more
# trials per program.
for k in 1024 4096; do
	step bench-k$k sh -c "'$bin' bench --json --device gpu --device-k $k >'$WORK/bench-k$k.json'"
done

# A real run on each device, then the comparison (float32: the GPU sums in
# another order; a few steps amplify that to about 1e-5 relative).
rm -rf "$WORK/qs-gpu" "$WORK/qs-cpu"
step run-gpu "$bin" run configs/quickstart.toml --device gpu --out "$WORK/qs-gpu"
step run-cpu "$bin" run configs/quickstart.toml --device cpu --out "$WORK/qs-cpu"
step compare "$bin" compare "$WORK/qs-cpu" "$WORK/qs-gpu" --tol 1e-4

# The runner's workers sharing the device (one call at a time): the
# quickstart on the GPU with 1 and 4 workers (the default is one per CPU).
for w in 1 4; do
	step run-gpu-w$w "$bin" run configs/quickstart.toml --device gpu --workers $w --out "$WORK/qs-gpu-w$w"
done

# TF32 against strict float32 through the walker on the GPU (2,000 test
# images and 4 directions: a short scan).
step noise-tf32 "$bin" noise configs/precision/fashion-noise.toml --device gpu --engine walker \
	--precisions float64,float32,tf32 --examples 2000 --directions 4 --out "$WORK/noise-tf32"

python3 - "$WORK" "$OUT" <<'PY'
import json, os, sys
work, out = sys.argv[1], sys.argv[2]
steps = []
for line in open(os.path.join(work, "steps.tsv")):
    name, rc, secs = line.rstrip("\n").split("\t")
    steps.append({"step": name, "ok": rc == "0", "exit": int(rc), "seconds": float(secs), "log": f"{name}.log"})
res = {"steps": steps}
try:
    b = json.load(open(os.path.join(work, "bench.json")))
    res["bench"] = b.get("gpu", b)
except Exception as e:  # the bench step failed
    res["bench_error"] = str(e)
try:
    res["noise"] = json.load(open(os.path.join(work, "noise-tf32", "noise.json")))
except Exception:
    pass
json.dump(res, open(os.path.join(out, "results.json"), "w"), indent=2)
lines = ["| step | ok | seconds |", "| --- | --- | --- |"]
lines += [f"| {s['step']} | {'yes' if s['ok'] else 'NO (exit %d)' % s['exit']} | {s['seconds']:.1f} |" for s in steps]
for k in (1024, 4096):
    try:
        res[f"bench_k{k}"] = json.load(open(os.path.join(work, f"bench-k{k}.json"))).get("gpu")
    except Exception:
        pass
g = res.get("bench")
if isinstance(g, dict) and "models" in g:
    lines += ["", f"{g.get('device', 'GPU')}: SGEMM {g.get('gemm_gflops', 0):.0f} GFLOP/s, TF32 {g.get('gemm_gflops_tf32', 0):.0f}", "",
              "| model | K | trials/s | eval GFLOP/s | eval/gemm | paper-scale minutes (7.2e6 trials) |", "| --- | --- | --- | --- | --- | --- |"]
    for m, r in g["models"].items():
        tps = r.get("trials_per_s_batched", 0) or float("nan")
        lines.append(f"| {m} | {r.get('k')} | {tps:.1f} | {r.get('eval_gflops', 0):.1f} | {r.get('eval_over_gemm', 0):.2f} | {7.2e6 / tps / 60:.1f} |")
for k in (1024, 4096):
    gk = res.get(f"bench_k{k}")
    if isinstance(gk, dict) and "models" in gk:
        for m, r in gk["models"].items():
            tps = r.get("trials_per_s_batched", 0) or float("nan")
            lines.append(f"| {m} | {r.get('k')} | {tps:.1f} | {r.get('eval_gflops', 0):.1f} | {r.get('eval_over_gemm', 0):.2f} | {7.2e6 / tps / 60:.1f} |")
open(os.path.join(out, "results.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
cp "$WORK/bench.json" "$OUT/" 2>/dev/null
cp "$WORK/noise-tf32/noise.json" "$OUT/" 2>/dev/null
tar -C "$WORK" -czf "$OUT/logs.tar.gz" $(cd "$WORK" && ls *.log steps.tsv qs-*/config.toml 2>/dev/null)
! grep -qv $'\t0\t' "$WORK/steps.tsv"
