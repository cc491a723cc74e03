package data

import (
	"path/filepath"
	"testing"
)

// fuzzFile writes data to a fresh temporary file and returns its path.
func fuzzFile(t *testing.T, data []byte) string {
	return writeFile(t, t.TempDir(), "input", data)
}

func FuzzReadIDXImages(f *testing.F) {
	good := idxImages(0x803, 2, 3, 3, make([]byte, 18))
	f.Add(good)
	f.Add(gzipped(f, good))
	f.Add(idxImages(0x803, 1<<20, 28, 28, nil))
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, data []byte) {
		px, n, rows, cols, err := ReadIDXImages(fuzzFile(t, data))
		if err == nil && len(px) != n*rows*cols {
			t.Fatalf("%d pixels for %d images of %dx%d", len(px), n, rows, cols)
		}
	})
}

func FuzzReadIDXLabels(f *testing.F) {
	good := idxLabels(0x801, 3, []byte{1, 2, 9})
	f.Add(good)
	f.Add(gzipped(f, good))
	f.Add(idxLabels(0x801, 0xffffffff, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ReadIDXLabels(fuzzFile(t, data))
	})
}

func FuzzReadCIFARBatch(f *testing.F) {
	rec := make([]byte, cifarRecord)
	rec[0] = 9
	f.Add(rec)
	f.Add(append(rec, rec...))
	f.Add([]byte{10})
	f.Fuzz(func(t *testing.T, data []byte) {
		px, lb, err := ReadCIFARBatch(filepath.Clean(fuzzFile(t, data)))
		if err == nil && (len(px) != len(lb)*cifarPixels || len(lb)*cifarRecord != len(data)) {
			t.Fatalf("%d pixels and %d labels from %d bytes", len(px), len(lb), len(data))
		}
	})
}
