package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// idxImages returns an IDX3 image file: header (magic, n, rows, cols) + pixels.
func idxImages(magic, n, rows, cols uint32, pixels []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, magic)
	b = binary.BigEndian.AppendUint32(b, n)
	b = binary.BigEndian.AppendUint32(b, rows)
	b = binary.BigEndian.AppendUint32(b, cols)
	return append(b, pixels...)
}

// idxLabels returns an IDX1 label file: header (magic, n) + labels.
func idxLabels(magic, n uint32, labels []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, magic)
	b = binary.BigEndian.AppendUint32(b, n)
	return append(b, labels...)
}

// gzipped returns b compressed with gzip.
func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// writeFile writes data to dir/name and returns the path.
func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// randBytes returns n pseudo-random bytes, each below limit (256 for any).
func randBytes(r *rand.Rand, n, limit int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.IntN(limit))
	}
	return b
}

// fashionSet is a small generated Fashion-MNIST: uncompressed file contents
// by base name, and the data they hold.
type fashionSet struct {
	files          map[string][]byte // base name (no .gz) -> IDX content
	pixels, labels []byte            // train then test
}

// makeFashion generates nTrain training and nTest test examples.
func makeFashion(seed uint64, nTrain, nTest int) fashionSet {
	r := rand.New(rand.NewPCG(seed, 1))
	s := fashionSet{files: map[string][]byte{}}
	for _, sp := range []struct {
		prefix string
		n      int
	}{{"train", nTrain}, {"t10k", nTest}} {
		px := randBytes(r, sp.n*28*28, 256)
		lb := randBytes(r, sp.n, 10)
		s.files[sp.prefix+"-images-idx3-ubyte"] = idxImages(0x803, uint32(sp.n), 28, 28, px)
		s.files[sp.prefix+"-labels-idx1-ubyte"] = idxLabels(0x801, uint32(sp.n), lb)
		s.pixels = append(s.pixels, px...)
		s.labels = append(s.labels, lb...)
	}
	return s
}

// cifarSet is a small generated CIFAR-10: batch file contents by name and
// the data they hold.
type cifarSet struct {
	files          map[string][]byte
	pixels, labels []byte
}

// makeCIFAR generates per records in each of the six batch files.
func makeCIFAR(seed uint64, per int) cifarSet {
	r := rand.New(rand.NewPCG(seed, 2))
	s := cifarSet{files: map[string][]byte{}}
	for _, name := range cifarFiles {
		var file []byte
		for range per {
			lb := byte(r.IntN(10))
			px := randBytes(r, 3072, 256)
			file = append(append(file, lb), px...)
			s.labels = append(s.labels, lb)
			s.pixels = append(s.pixels, px...)
		}
		s.files[name] = file
	}
	return s
}
