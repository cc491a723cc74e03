package data

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// writeCIFAR writes s into dir (created if needed) and returns dir.
func writeCIFAR(t *testing.T, s cifarSet, dir string) string {
	t.Helper()
	for name, data := range s.files {
		writeFile(t, dir, name, data)
	}
	return dir
}

func TestReadCIFARBatch(t *testing.T) {
	s := makeCIFAR(5, 3)
	path := writeFile(t, t.TempDir(), "data_batch_1.bin", s.files["data_batch_1.bin"])
	px, lb, err := ReadCIFARBatch(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(px, s.pixels[:3*3072]) || !bytes.Equal(lb, s.labels[:3]) {
		t.Error("ReadCIFARBatch does not return what was written")
	}
	// The first record's pixels are its bytes 1..3072, unchanged (already CHW).
	if !bytes.Equal(px[:3072], s.files["data_batch_1.bin"][1:3073]) {
		t.Error("first record's pixels differ")
	}
}

func TestLoadCIFAR10(t *testing.T) {
	s := makeCIFAR(6, 2)
	top := t.TempDir()
	sub := t.TempDir()
	writeCIFAR(t, s, filepath.Join(sub, cifarSubdir))
	for _, tc := range []struct{ name, dir string }{
		{"direct", writeCIFAR(t, s, top)},
		{"subdir", sub},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Load("cifar-10", tc.dir)
			if err != nil {
				t.Fatal(err)
			}
			if p.Name != "cifar-10" || p.Len() != 12 || p.Dim() != 3072 || p.Channels != 3 || p.Classes != 10 {
				t.Errorf("pool %q len %d dim %d channels %d classes %d", p.Name, p.Len(), p.Dim(), p.Channels, p.Classes)
			}
			if !bytes.Equal(p.Pixels, s.pixels) || !bytes.Equal(p.Labels, s.labels) {
				t.Error("pool differs from the files (want data_batch_1..5 then test_batch, in file order)")
			}
		})
	}
	t.Run("env", func(t *testing.T) {
		t.Setenv(EnvCIFARDir, sub)
		p, err := LoadCIFAR10("")
		if err != nil {
			t.Fatal(err)
		}
		if p.Len() != 12 {
			t.Errorf("Len() = %d, want 12", p.Len())
		}
	})
}

func TestLoadCIFAR10Errors(t *testing.T) {
	for _, tc := range []struct {
		name string
		file string
		edit func([]byte) []byte // nil: remove the file
		want error
		msg  string
	}{
		{"truncated", "data_batch_3.bin", func(b []byte) []byte { return b[:len(b)-1] }, ErrCorrupt,
			"file is 6145 bytes, not a multiple of the 3073-byte record (1 whole records + 3072 stray bytes)"},
		{"trailing", "test_batch.bin", func(b []byte) []byte { return append(b, 7) }, ErrCorrupt,
			"not a multiple of the 3073-byte record (2 whole records + 1 stray bytes)"},
		{"empty", "data_batch_1.bin", func([]byte) []byte { return []byte{} }, ErrCorrupt, "file is empty"},
		{"label-out-of-range", "data_batch_2.bin", func(b []byte) []byte { b[3073] = 10; return b }, ErrCorrupt,
			"label 10 of record 1 (byte offset 3073) is out of range [0, 10)"},
		{"missing", "data_batch_5.bin", nil, ErrMissing, "scripts/get-cifar10.sh"},
		{"missing-test", "test_batch.bin", nil, ErrMissing, EnvCIFARDir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := makeCIFAR(8, 2)
			dir := writeCIFAR(t, s, t.TempDir())
			path := filepath.Join(dir, tc.file)
			if tc.edit == nil {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			} else {
				writeFile(t, dir, tc.file, tc.edit(append([]byte{}, s.files[tc.file]...)))
			}
			_, err := LoadCIFAR10(dir)
			checkErr(t, err, tc.want, path, tc.msg)
			t.Log(err)
		})
	}
	t.Run("missing-folder", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "none")
		t.Setenv(EnvCIFARDir, dir)
		_, err := Load("CIFAR10", "")
		checkErr(t, err, ErrMissing, dir, "scripts/get-cifar10.sh")
	})
	t.Run("missing-direct-file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "test_batch.bin")
		_, _, err := ReadCIFARBatch(path)
		checkErr(t, err, ErrMissing, path, "no such file")
	})
}
