package data

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadIDXRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	px := randBytes(r, 3*5*4, 256)
	lb := randBytes(r, 3, 256)
	img := idxImages(0x803, 3, 5, 4, px)
	lab := idxLabels(0x801, 3, lb)
	empty := idxImages(0x803, 0, 28, 28, nil)
	for _, tc := range []struct {
		name     string
		img, lab []byte
		n        int
	}{
		{"raw", img, lab, 3},
		{"gzip.gz", gzipped(t, img), gzipped(t, lab), 3},
		{"gzip-without-suffix", gzipped(t, img), gzipped(t, lab), 3},
		{"empty-raw", empty, idxLabels(0x801, 0, nil), 0},
		{"empty.gz", gzipped(t, empty), gzipped(t, idxLabels(0x801, 0, nil)), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ip := writeFile(t, dir, "img-"+tc.name, tc.img)
			lp := writeFile(t, dir, "lab-"+tc.name, tc.lab)
			gotPx, n, rows, cols, err := ReadIDXImages(ip)
			if err != nil {
				t.Fatal(err)
			}
			wantRows, wantCols, wantPx := 5, 4, px
			if tc.n == 0 {
				wantRows, wantCols, wantPx = 28, 28, nil
			}
			if n != tc.n || rows != wantRows || cols != wantCols || !bytes.Equal(gotPx, wantPx) {
				t.Errorf("ReadIDXImages = %d bytes, n=%d rows=%d cols=%d; want %d bytes, %d, %d, %d",
					len(gotPx), n, rows, cols, len(wantPx), tc.n, wantRows, wantCols)
			}
			gotLb, err := ReadIDXLabels(lp)
			if err != nil {
				t.Fatal(err)
			}
			wantLb := lb
			if tc.n == 0 {
				wantLb = nil
			}
			if !bytes.Equal(gotLb, wantLb) {
				t.Errorf("ReadIDXLabels = %v, want %v", gotLb, wantLb)
			}
		})
	}
}

// TestReadIDXErrors checks the low-level readers' errors on malformed files.
func TestReadIDXErrors(t *testing.T) {
	px := make([]byte, 2*3*3)
	good := idxImages(0x803, 2, 3, 3, px)
	goodGz := gzipped(t, good)
	for _, tc := range []struct {
		name   string
		data   []byte // nil: no file
		labels bool   // read with ReadIDXLabels
		want   error
		msg    string
	}{
		{"missing", nil, false, ErrMissing, "no such file"},
		{"empty", []byte{}, false, ErrCorrupt, "too short"},
		{"short-header", good[:10], false, ErrCorrupt, "too short for the 16-byte image header"},
		{"bad-magic", idxImages(0x801, 2, 3, 3, px), false, ErrCorrupt, "bad magic number 0x00000801, want 0x00000803 (IDX images)"},
		{"bad-magic-labels", good, true, ErrCorrupt, "bad magic number 0x00000803, want 0x00000801 (IDX labels)"},
		{"truncated", good[:len(good)-1], false, ErrCorrupt, "truncated, 1 bytes missing"},
		{"trailing", append(append([]byte{}, good...), 0, 0), false, ErrCorrupt, "2 trailing bytes"},
		{"huge-dims", idxImages(0x803, 0xffffffff, 0xffffffff, 0xffffffff, nil), false, ErrCorrupt, "implausible"},
		{"huge-dims-raw", idxImages(0x803, 1<<20, 1<<10, 1<<10, nil), false, ErrCorrupt, "truncated"},
		{"huge-dims-gz", gzipped(t, idxImages(0x803, 1<<20, 1<<10, 1<<10, px)), false, ErrCorrupt, "truncated"},
		{"gz-truncated-content", gzipped(t, good[:len(good)-3]), false, ErrCorrupt, "truncated, 3 bytes missing"},
		{"gz-trailing-content", gzipped(t, append(append([]byte{}, good...), 9)), false, ErrCorrupt, "1 trailing bytes"},
		{"gz-truncated-stream", goodGz[:len(goodGz)-12], false, ErrCorrupt, "truncated gzip stream"},
		{"gz-truncated-trailer", goodGz[:len(goodGz)-4], false, ErrCorrupt, "truncated gzip stream"},
		{"gz-bad-crc", flip(goodGz, len(goodGz)-6), false, ErrCorrupt, "checksum"},
		{"gz-bad-header", append([]byte{0x1f, 0x8b, 0}, make([]byte, 20)...), false, ErrCorrupt, "gzip"},
		{"gz-garbage-after-stream", append(append([]byte{}, goodGz...), 1, 2, 3), false, ErrCorrupt, "gzip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "file-"+tc.name)
			if tc.data != nil {
				writeFile(t, filepath.Dir(path), filepath.Base(path), tc.data)
			}
			var err error
			if tc.labels {
				_, err = ReadIDXLabels(path)
			} else {
				_, _, _, _, err = ReadIDXImages(path)
			}
			checkErr(t, err, tc.want, path, tc.msg)
		})
	}
}

// flip returns a copy of b with byte i inverted.
func flip(b []byte, i int) []byte {
	c := append([]byte{}, b...)
	c[i] ^= 0xff
	return c
}

// checkErr requires err to wrap want and to mention path and msg.
func checkErr(t *testing.T, err, want error, path, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one wrapping %v", want)
	}
	if !errors.Is(err, want) {
		t.Errorf("error %q does not wrap %v", err, want)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the file %s", err, path)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Errorf("error %q does not say %q", err, msg)
	}
}

// writeFashion writes s into a new folder, gzipped (with .gz) or raw.
func writeFashion(t *testing.T, s fashionSet, gz bool) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range s.files {
		if gz {
			writeFile(t, dir, name+".gz", gzipped(t, data))
		} else {
			writeFile(t, dir, name, data)
		}
	}
	return dir
}

func TestLoadFashion(t *testing.T) {
	s := makeFashion(1, 5, 3)
	for _, gz := range []bool{false, true} {
		p, err := loadFashion(writeFashion(t, s, gz), 5, 3)
		if err != nil {
			t.Fatalf("gz=%v: %v", gz, err)
		}
		if p.Name != "fashion-mnist" || p.Len() != 8 || p.Dim() != 784 || p.Channels != 1 ||
			p.Height != 28 || p.Width != 28 || p.Classes != 10 {
			t.Errorf("gz=%v: pool %q len %d dim %d shape %dx%dx%d classes %d", gz, p.Name, p.Len(), p.Dim(),
				p.Channels, p.Height, p.Width, p.Classes)
		}
		if !bytes.Equal(p.Pixels, s.pixels) || !bytes.Equal(p.Labels, s.labels) {
			t.Errorf("gz=%v: pool data differs from the files (want train then test, in file order)", gz)
		}
		if len(p.Mean) != 1 || len(p.Std) != 1 {
			t.Errorf("gz=%v: Mean %v Std %v, want one value each", gz, p.Mean, p.Std)
		}
	}
}

// TestLoadFashionPrefersRaw checks that a raw file wins over a .gz beside it.
func TestLoadFashionPrefersRaw(t *testing.T) {
	s := makeFashion(2, 4, 2)
	dir := writeFashion(t, s, false)
	for name := range s.files {
		writeFile(t, dir, name+".gz", []byte("not what you are looking for"))
	}
	p, err := loadFashion(dir, 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.Labels, s.labels) {
		t.Error("labels differ")
	}
}

func TestLoadFashionErrors(t *testing.T) {
	setUint32 := func(off int, v uint32) func([]byte) []byte {
		return func(b []byte) []byte { binary.BigEndian.PutUint32(b[off:], v); return b }
	}
	for _, tc := range []struct {
		name    string
		gz      bool
		file    string              // base name of the file to damage
		content func([]byte) []byte // damages the uncompressed content
		stream  func([]byte) []byte // damages the file as stored
		remove  bool                // deletes the file
		want    error
		msg     string
	}{
		{name: "bad-magic-images", file: "train-images-idx3-ubyte", content: setUint32(0, 0x801),
			want: ErrCorrupt, msg: "bad magic number 0x00000801, want 0x00000803 (IDX images): corrupt dataset file; the file is not a Fashion-MNIST image file"},
		{name: "bad-magic-labels-gz", gz: true, file: "t10k-labels-idx1-ubyte", content: setUint32(0, 0x803),
			want: ErrCorrupt, msg: "t10k-labels-idx1-ubyte.gz: bad magic number 0x00000803, want 0x00000801 (IDX labels): corrupt dataset file; the file is not a Fashion-MNIST label file — reinstall with make data"},
		{name: "wrong-dims", file: "train-images-idx3-ubyte", content: func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[8:], 27)
			return b[:len(b)-5*28]
		}, want: ErrCorrupt, msg: "images are 27x28, want 28x28"},
		{name: "count-mismatch", file: "t10k-labels-idx1-ubyte", content: func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[4:], 2)
			return b[:len(b)-1]
		}, want: ErrCorrupt, msg: "2 labels, but"},
		{name: "wrong-count", file: "t10k-labels-idx1-ubyte", content: func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[4:], 4)
			return append(b, 1)
		}, want: ErrCorrupt, msg: "4 labels, but"},
		{name: "truncated", file: "train-images-idx3-ubyte", content: func(b []byte) []byte { return b[:len(b)-1] },
			want: ErrCorrupt, msg: "truncated"},
		{name: "truncated-gz-content", gz: true, file: "train-images-idx3-ubyte", content: func(b []byte) []byte { return b[:len(b)-100] },
			want: ErrCorrupt, msg: "truncated, 100 bytes missing"},
		{name: "trailing", file: "train-labels-idx1-ubyte", content: func(b []byte) []byte { return append(b, 0) },
			want: ErrCorrupt, msg: "1 trailing bytes"},
		{name: "trailing-gz", gz: true, file: "train-labels-idx1-ubyte", content: func(b []byte) []byte { return append(b, 0, 0) },
			want: ErrCorrupt, msg: "2 trailing bytes"},
		{name: "label-out-of-range", file: "train-labels-idx1-ubyte", content: func(b []byte) []byte { b[8+3] = 10; return b },
			want: ErrCorrupt, msg: "label 10 of example 3 is out of range [0, 10)"},
		{name: "truncated-gzip", gz: true, file: "train-images-idx3-ubyte", stream: func(b []byte) []byte { return b[:len(b)/2] },
			want: ErrCorrupt, msg: "truncated gzip stream"},
		{name: "missing", file: "t10k-images-idx3-ubyte", remove: true,
			want: ErrMissing, msg: "make data"},
		{name: "missing-gz", gz: true, file: "t10k-images-idx3-ubyte", remove: true,
			want: ErrMissing, msg: EnvFashionDir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := makeFashion(3, 5, 3)
			dir := writeFashion(t, s, tc.gz)
			path := filepath.Join(dir, tc.file)
			if tc.gz {
				path += ".gz"
			}
			switch {
			case tc.remove:
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			default:
				data := s.files[tc.file]
				if tc.content != nil {
					data = tc.content(append([]byte{}, data...))
				}
				if tc.gz {
					data = gzipped(t, data)
				}
				if tc.stream != nil {
					data = tc.stream(data)
				}
				writeFile(t, dir, filepath.Base(path), data)
			}
			_, err := loadFashion(dir, 5, 3)
			checkErr(t, err, tc.want, path, tc.msg)
			t.Log(err)
		})
	}
	t.Run("wrong-split-size", func(t *testing.T) {
		dir := writeFashion(t, makeFashion(4, 5, 3), false)
		_, err := loadFashion(dir, 6, 3)
		checkErr(t, err, ErrCorrupt, filepath.Join(dir, "train-images-idx3-ubyte"), "5 images, want 6 (the Fashion-MNIST training split)")
		_, err = LoadFashionMNIST(dir)
		checkErr(t, err, ErrCorrupt, filepath.Join(dir, "train-images-idx3-ubyte"), "want 60000")
	})
	t.Run("missing-folder", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "nowhere")
		_, err := LoadFashionMNIST(dir)
		checkErr(t, err, ErrMissing, dir, "make data")
	})
}

// TestLoadFashionDir checks how Load and LoadFashionMNIST pick the folder.
func TestLoadFashionDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "from-env")
	t.Setenv(EnvFashionDir, dir)
	_, err := Load("fashion-mnist", "")
	checkErr(t, err, ErrMissing, dir, "$"+EnvFashionDir)
	t.Setenv(EnvFashionDir, "")
	if d, _ := resolveDir("", EnvFashionDir, DefaultFashionDir, os.Getenv); d != DefaultFashionDir {
		t.Errorf("resolveDir with the variable empty = %q, want %q", d, DefaultFashionDir)
	}
	if _, err := Load("mnist-digits", ""); err == nil || !strings.Contains(err.Error(), "unknown dataset") {
		t.Errorf("Load of an unknown dataset: %v", err)
	}
}

// TestLoadFashionPartial: a folder with small splits is refused by
// LoadFashionMNIST (wrong split sizes) unless EnvFashionPartial is 1,
// which accepts it with every example.
func TestLoadFashionPartial(t *testing.T) {
	dir := writeFashion(t, makeFashion(4, 6, 3), true)
	t.Setenv(EnvFashionPartial, "")
	if _, err := LoadFashionMNIST(dir); err == nil {
		t.Fatal("a folder of 6 training and 3 test images was accepted as Fashion-MNIST")
	}
	t.Setenv(EnvFashionPartial, "1")
	p, err := LoadFashionMNIST(dir)
	if err != nil {
		t.Fatalf("with %s=1: %v", EnvFashionPartial, err)
	}
	if p.Len() != 9 {
		t.Errorf("partial pool of %d examples, want 9", p.Len())
	}
}
