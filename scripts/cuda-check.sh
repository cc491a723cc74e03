#!/usr/bin/env bash
# make cuda-check: compile and link the GPU build (tag gpu) against Debian's
# CUDA 11.8 (nvidia-cuda-dev and libcuda1, from the non-free component),
# without a GPU: go build, go vet and every test binary (the GPU tests skip
# without a device), and the kernels compiled with NVRTC (libnvrtc, which
# nvidia-cuda-dev pulls in: libnvrtc11.2, libnvrtc-builtins11.8) exactly as
# cudev.Open compiles them, for compute_90 and compute_80, failing on any
# error or warning. Installs the packages as root or with passwordless
# sudo when missing; adds the non-free component in a file of its own
# (/etc/apt/sources.list.d/perturb-nonfree.sources) if apt cannot see them.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo -n"

need=""
[ -f /usr/include/cuda.h ] && [ -f /usr/include/cublas_v2.h ] && [ -f /usr/include/nvrtc.h ] &&
	ls /usr/lib/x86_64-linux-gnu/libnvrtc.so >/dev/null 2>&1 || need="nvidia-cuda-dev"
ls /usr/lib/x86_64-linux-gnu/libcuda.so >/dev/null 2>&1 || need="$need libcuda1"
if [ -n "$need" ]; then
	start=$(date +%s)
	if ! apt-cache policy nvidia-cuda-dev 2>/dev/null | grep -q 'Candidate: [0-9]'; then
		codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
		echo "adding Debian's contrib and non-free components for $codename"
		printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s %s-updates\nComponents: contrib non-free\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$codename" "$codename" |
			$SUDO tee /etc/apt/sources.list.d/perturb-nonfree.sources >/dev/null
	fi
	echo "installing$need (about 1.5 GB)"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need >/dev/null
	echo "installed in $(( $(date +%s) - start ))s"
fi

tags=gpu
[ -n "$(ls /usr/lib/libopenblas.so /usr/lib/*/libopenblas.so 2>/dev/null)" ] && tags=gpu,openblas
echo "go build -tags $tags ./..."
$GO build -tags "$tags" ./...
$GO build -tags "$tags" -o /dev/null ./cmd/perturb
echo "go vet -tags $tags ./..."
$GO vet -tags "$tags" ./...
echo "compiling and linking every test binary with -tags $tags (GPU tests skip without a device)"
$GO test -tags "$tags" -count=1 -run XXX_none ./... >/dev/null
echo "the CUDA 13 shim is transparent on these headers"
CGO_CFLAGS="-I$PWD/kernels/cuda13shim" $GO build -tags "$tags" -o /dev/null ./cmd/perturb
echo "NVRTC compiles the kernels for compute_90 and compute_80 with cudev's options, no warnings:"
if ! out=$($GO test -tags "$tags" -count=1 -v -run 'TestNVRTCCompile' ./kernels/cudev/ 2>&1); then
	echo "$out"
	exit 1
fi
echo "$out" | grep -E '^\s*(--- |nvrtc_test)' | sed 's/^/  /'
echo "GPU parity tests (skip without a device):"
$GO test -tags "$tags" -count=1 -v ./kernels/cudev/ 2>&1 | grep -E '^(--- |ok|FAIL|PASS)' | sed 's/^/  /'
$GO test -tags "$tags" -count=1 -v -run 'GPUTrialPath' ./trials/ 2>&1 | grep -E '^(--- |ok|FAIL|PASS)' | sed 's/^/  /'
echo "the gpu build starts without a GPU (cu's init does not exit) and says what is missing:"
$GO run -tags "$tags" ./cmd/perturb bench --device gpu --gemm 8 2>&1 | head -1 | sed 's/^/  /' || true
echo "cuda-check: ok"
