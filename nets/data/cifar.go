package data

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// DefaultCIFARDir is the folder, relative to the working directory, that
// scripts/get-cifar10.sh fills with the CIFAR-10 binary version.
const DefaultCIFARDir = "data/cifar-10"

// EnvCIFARDir names the environment variable that, when set and non-empty,
// overrides DefaultCIFARDir.
const EnvCIFARDir = "PERTURB_CIFAR10"

// CIFAR-10 binary record layout.
const (
	cifarSide   = 32
	cifarPixels = 3 * cifarSide * cifarSide // 3072: 1024 R, 1024 G, 1024 B
	cifarRecord = 1 + cifarPixels           // label byte + pixels
	cifarClass  = 10
	cifarSubdir = "cifar-10-batches-bin" // what the tarball unpacks to
)

// cifarFiles are the six batch files, training batches first.
var cifarFiles = []string{
	"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
	"data_batch_4.bin", "data_batch_5.bin", "test_batch.bin",
}

// cifarHint is the error advice for CIFAR-10 files.
var cifarHint = hint{
	what: "a CIFAR-10 %s file",
	fix:  "download it again with scripts/get-cifar10.sh, or set " + EnvCIFARDir + " to a folder with intact copies",
	missing: "run scripts/get-cifar10.sh (it downloads and unpacks CIFAR-10 into " + DefaultCIFARDir + "), " +
		"or set " + EnvCIFARDir + " to a folder holding data_batch_1.bin … data_batch_5.bin and test_batch.bin",
}

// ReadCIFARBatch reads one CIFAR-10 binary batch file (data_batch_k.bin or
// test_batch.bin): a sequence of 3073-byte records, each a label byte
// followed by 3072 pixel bytes — the 32x32 red plane, then green, then blue,
// each row-major, i.e. already CHW. It returns the pixels of all records
// concatenated (3072 bytes per record) and the labels. The file size must be
// a positive multiple of 3073 (real batches hold 10000 records; smaller
// files are accepted) and every label must be below 10; otherwise the error
// wraps [ErrCorrupt]. A missing file wraps [ErrMissing].
func ReadCIFARBatch(path string) (pixels, labels []uint8, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, openError(path, err, cifarHint)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, openError(path, err, cifarHint)
	}
	if st.IsDir() {
		return nil, nil, fmt.Errorf("%s: is a folder, not a file: %w; %s", path, ErrMissing, cifarHint.missing)
	}
	size := st.Size()
	if size == 0 {
		return nil, nil, corrupt(path, "file is empty", cifarHint.damaged())
	}
	if size%cifarRecord != 0 {
		return nil, nil, corrupt(path, fmt.Sprintf("file is %d bytes, not a multiple of the %d-byte record (%d whole records + %d stray bytes): truncated or padded",
			size, cifarRecord, size/cifarRecord, size%cifarRecord), cifarHint.damaged())
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(f, buf); err != nil {
		return nil, nil, fmt.Errorf("%s: read error: %w; check the disk and the file's permissions", path, err)
	}
	n := int(size / cifarRecord)
	pixels = make([]uint8, n*cifarPixels)
	labels = make([]uint8, n)
	for i := range n {
		rec := buf[i*cifarRecord : (i+1)*cifarRecord]
		if rec[0] >= cifarClass {
			return nil, nil, corrupt(path, fmt.Sprintf("label %d of record %d (byte offset %d) is out of range [0, %d)",
				rec[0], i, i*cifarRecord, cifarClass), cifarHint.notA("batch"))
		}
		labels[i] = rec[0]
		copy(pixels[i*cifarPixels:], rec[1:])
	}
	return pixels, labels, nil
}

// LoadCIFAR10 loads CIFAR-10 (binary version) from dir (dir == "" means
// $PERTURB_CIFAR10 if set, else DefaultCIFARDir) into a pool of the records
// of data_batch_1.bin … data_batch_5.bin then test_batch.bin, in file order:
// 3x32x32 images, 10 classes. The files may lie directly in dir or in
// dir/cifar-10-batches-bin (as the tarball unpacks). All six files must
// exist; each is read with [ReadCIFARBatch].
func LoadCIFAR10(dir string) (*Pool, error) {
	dir, src := resolveDir(dir, EnvCIFARDir, DefaultCIFARDir, os.Getenv)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%s: CIFAR-10 folder (%s) does not exist or is not a folder: %w; %s",
			dir, src, ErrMissing, cifarHint.missing)
	}
	base := dir
	if !exists(filepath.Join(dir, cifarFiles[0])) && exists(filepath.Join(dir, cifarSubdir, cifarFiles[0])) {
		base = filepath.Join(dir, cifarSubdir)
	}
	var pixels, labels []uint8
	for _, name := range cifarFiles {
		path := filepath.Join(base, name)
		if !exists(path) {
			return nil, fmt.Errorf("%s: no such file (looked in %s and %s): %w; %s",
				path, dir, filepath.Join(dir, cifarSubdir), ErrMissing, cifarHint.missing)
		}
		p, l, err := ReadCIFARBatch(path)
		if err != nil {
			return nil, err
		}
		pixels = append(pixels, p...)
		labels = append(labels, l...)
	}
	return NewPool("cifar-10", 3, cifarSide, cifarSide, cifarClass, pixels, labels)
}

// exists reports whether path names an existing file or folder.
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
