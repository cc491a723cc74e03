#!/usr/bin/env bash
# Run here: packs what the GPU machine needs and lacks (it has the CUDA 13
# toolkit but no Go and no network) into the git-ignored folder .device/:
# the Go toolchain (bin, pkg/tool, pkg/include, src without tests and testdata), xz
# compressed, and the module sources (go mod vendor). The device tool
# carries at most 64 MiB: the script fails above that.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=.device
rm -rf "$out" && mkdir -p "$out"
goroot=$(go env GOROOT)
tar -C "$goroot/.." --exclude='*_test.go' --exclude='testdata' --exclude='go/pkg/tool/*/api' \
	-cJf "$out/go.tar.xz" go/bin go/pkg/tool go/pkg/include go/src go/VERSION go/go.env 2>/dev/null ||
	tar -C "$goroot/.." --exclude='*_test.go' --exclude='testdata' -cJf "$out/go.tar.xz" go/bin go/pkg/tool go/pkg/include go/src go/VERSION
rm -rf "$out/vendor"
go mod vendor -o "$out/vendor"
tar -C "$out" -cJf "$out/vendor.tar.xz" vendor && rm -rf "$out/vendor"
# Part of the real Fashion-MNIST: all 10,000 test images and the first
# $DEVICE_TRAIN training images (the whole set does not fit beside the
# toolchain); run.sh reads it with PERTURB_FASHION_PARTIAL=1.
data=${PERTURB_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
ntrain=${DEVICE_TRAIN:-20000}
mkdir -p "$out/fashion-mnist"
cp "$data"/t10k-*-ubyte.gz "$out/fashion-mnist/"
python3 - "$data" "$out/fashion-mnist" "$ntrain" <<'PY'
import gzip, struct, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for name, item in (("train-images-idx3-ubyte", 784), ("train-labels-idx1-ubyte", 1)):
    raw = gzip.open(f"{src}/{name}.gz").read()
    hdr = 16 if item == 784 else 8
    total = struct.unpack(">I", raw[4:8])[0]
    n = min(n, total)
    out = raw[:4] + struct.pack(">I", n) + raw[8:hdr] + raw[hdr:hdr + n * item]
    with gzip.open(f"{dst}/{name}.gz", "wb", compresslevel=9) as f:
        f.write(out)
PY
size=$(du -sb "$out" | cut -f1)
echo "packed $(du -sh "$out" | cut -f1) into $out"
if [ "$size" -gt $((64 * 1024 * 1024)) ]; then
	echo "over the device tool's 64 MiB carry limit" >&2
	exit 1
fi
