#!/usr/bin/env bash
# get-cifar10.sh — download and unpack the CIFAR-10 binary version.
#
# Usage: scripts/get-cifar10.sh [target-folder]    (default: data/cifar-10)
#
# Downloads cifar-10-binary.tar.gz from the University of Toronto, checks its
# MD5 checksum (a mismatching download is deleted and nothing is unpacked),
# unpacks it into the target folder (giving target/cifar-10-batches-bin/
# data_batch_1.bin … data_batch_5.bin and test_batch.bin), and prints the
# export line that points perturb at it (PERTURB_CIFAR10).
set -euo pipefail

URL="https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
MD5="c32a1d4ab5d03f1284b67883e8d87530"
TARGET="${1:-data/cifar-10}"
ARCHIVE="$TARGET/cifar-10-binary.tar.gz"

die() { echo "get-cifar10.sh: $*" >&2; exit 1; }

md5_of() {
	if command -v md5sum >/dev/null 2>&1; then
		md5sum "$1" | awk '{print $1}'
	elif command -v md5 >/dev/null 2>&1; then
		md5 -q "$1"
	else
		die "need md5sum or md5 to verify the download; install coreutils"
	fi
}

mkdir -p "$TARGET" || die "cannot create $TARGET"

if [ -f "$TARGET/cifar-10-batches-bin/test_batch.bin" ] &&
	[ -f "$TARGET/cifar-10-batches-bin/data_batch_5.bin" ]; then
	echo "CIFAR-10 already unpacked in $TARGET/cifar-10-batches-bin" >&2
else
	if [ ! -f "$ARCHIVE" ] || [ "$(md5_of "$ARCHIVE")" != "$MD5" ]; then
		rm -f "$ARCHIVE" "$ARCHIVE.part"
		echo "downloading $URL -> $ARCHIVE" >&2
		if command -v curl >/dev/null 2>&1; then
			curl -fL --retry 3 -o "$ARCHIVE.part" "$URL" ||
				{ rm -f "$ARCHIVE.part"; die "download of $URL failed (curl); check the network and try again"; }
		elif command -v wget >/dev/null 2>&1; then
			wget -O "$ARCHIVE.part" "$URL" ||
				{ rm -f "$ARCHIVE.part"; die "download of $URL failed (wget); check the network and try again"; }
		else
			die "need curl or wget to download $URL; install one of them"
		fi
		mv "$ARCHIVE.part" "$ARCHIVE"
	fi

	got="$(md5_of "$ARCHIVE")"
	if [ "$got" != "$MD5" ]; then
		rm -f "$ARCHIVE"
		die "$ARCHIVE: MD5 checksum $got, want $MD5; the download is damaged and was deleted — run this script again"
	fi
	echo "checksum OK ($MD5); unpacking into $TARGET" >&2
	tar -xzf "$ARCHIVE" -C "$TARGET" || die "unpacking $ARCHIVE failed; delete it and run this script again"
	rm -f "$ARCHIVE"
fi

for f in data_batch_1.bin data_batch_2.bin data_batch_3.bin data_batch_4.bin data_batch_5.bin test_batch.bin; do
	[ -f "$TARGET/cifar-10-batches-bin/$f" ] || die "$TARGET/cifar-10-batches-bin/$f missing after unpacking; delete $TARGET and run this script again"
done

abs="$(cd "$TARGET" && pwd)"
echo "CIFAR-10 is ready. To use it from any working directory:"
echo "export PERTURB_CIFAR10=$abs"
