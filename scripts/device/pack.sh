#!/usr/bin/env bash
# Run here: packs what the GPU machine needs and lacks (it has the CUDA 13
# toolkit but no Go and no network) into the git-ignored folder .device/:
# the Go toolchain (bin, pkg/tool, src without tests and testdata), xz
# compressed, and the module sources (go mod vendor). The device tool
# carries at most 64 MiB: the script fails above that.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=.device
rm -rf "$out" && mkdir -p "$out"
goroot=$(go env GOROOT)
tar -C "$goroot/.." --exclude='*_test.go' --exclude='testdata' --exclude='go/pkg/tool/*/api' \
	-cJf "$out/go.tar.xz" go/bin go/pkg/tool go/src go/VERSION go/go.env 2>/dev/null ||
	tar -C "$goroot/.." --exclude='*_test.go' --exclude='testdata' -cJf "$out/go.tar.xz" go/bin go/pkg/tool go/src go/VERSION
rm -rf "$out/vendor"
go mod vendor -o "$out/vendor"
tar -C "$out" -cJf "$out/vendor.tar.xz" vendor && rm -rf "$out/vendor"
size=$(du -sb "$out" | cut -f1)
echo "packed $(du -sh "$out" | cut -f1) into $out"
if [ "$size" -gt $((64 * 1024 * 1024)) ]; then
	echo "over the device tool's 64 MiB carry limit" >&2
	exit 1
fi
