#!/usr/bin/env bash
# Before/after speed of the engine, in one run on one machine:
#
#   bash scripts/bench-engine.sh [BASE] [OUT]
#
# builds perturb and graph's test binary at BASE (a commit, default
# 7b99dd7, the commit before the one-engine work) in a temporary worktree
# and at the working tree, then runs back to back: perturb bench --json
# (gemm, eval GFLOP/s, trials/s), the convnet HVP benchmark (K = 8,
# B = 128: every variant each binary has, e.g. the graph, the retired
# hand-written one before, the walker in one program and in chunks after)
# and, after, the walker's test loss on 10,000 images. Results
# go to OUT (default /tmp/bench-engine); docs/engine.md has the last table.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:-7b99dd7}
out=${2:-/tmp/bench-engine}
mkdir -p "$out"
wt=$(mktemp -d)
git worktree add -q --detach "$wt" "$base"
trap 'git worktree remove --force "$wt"' EXIT
(cd "$wt" && go build -tags openblas -o "$out/perturb-before" ./cmd/perturb && go test -tags openblas -c -o "$out/graph-before.test" ./graph/)
go build -tags openblas -o "$out/perturb-after" ./cmd/perturb
go test -tags openblas -c -o "$out/graph-after.test" ./graph/
uptime | tee "$out/load.txt"
"$out/perturb-before" bench --json >"$out/bench-before.json"
"$out/perturb-after" bench --json >"$out/bench-after.json"
(cd "$wt/graph" && "$out/graph-before.test" -test.run '^$' -test.bench 'HVP/convnet' -test.benchtime 20x) >"$out/hvp-before.txt"
(cd graph && "$out/graph-after.test" -test.run '^$' -test.bench 'HVP/convnet' -test.benchtime 20x) >"$out/hvp-after.txt"
(cd graph && PERTURB_BENCH_POOL=10000 PERTURB_BENCH_REPS=1 "$out/graph-after.test" -test.run '^$' -test.bench DeviceEvalVsGemm -test.benchtime 1x) >"$out/eval-walker.txt"
uptime | tee -a "$out/load.txt"
python3 - "$out" <<'PY'
import json, re, sys
out = sys.argv[1]
for v in ("before", "after"):
    b = json.load(open(f"{out}/bench-{v}.json"))
    g = b["gemm_gflops"]
    for m, r in sorted(b["models"].items()):
        print(f"{v:6} {m:9} gemm {g:6.1f}  eval {r['eval_gflops']:6.1f} ({r['eval_gflops'] / g:.2f} of gemm)  trials/s {r['trials_per_s_batched']:.2f}")
for v in ("before", "after"):
    for line in open(f"{out}/hvp-{v}.txt"):
        m = re.match(r"BenchmarkHVP/convnet/(\S+)/K=8/B=128\S*\s+\d+\s+\d+ ns/op\s+([\d.]+) us/image-trial", line)
        if m:
            print(f"{v:6} convnet HVP {m.group(1):13} {m.group(2)} us per image-trial")
for line in open(f"{out}/eval-walker.txt"):
    if "of gemm" in line:
        print("after ", line.strip())
PY
