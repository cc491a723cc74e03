package data

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// DefaultFashionDir is where the Debian package dataset-fashion-mnist
// (installed by `make data`) puts the gzipped Fashion-MNIST IDX files.
const DefaultFashionDir = "/usr/share/datasets/fashion-mnist"

// EnvFashionDir names the environment variable that, when set and non-empty,
// overrides DefaultFashionDir.
const EnvFashionDir = "PERTURB_FASHION_MNIST"

// EnvFashionPartial names the environment variable that, set to 1, lets
// LoadFashionMNIST accept splits of any size: a folder holding part of
// Fashion-MNIST (the GPU machine's check carries only part of it; see
// scripts/device/pack.sh). Results on a partial pool are not those of the
// real one: the pool's size enters every training-set draw.
const EnvFashionPartial = "PERTURB_FASHION_PARTIAL"

// Fashion-MNIST shape and split sizes.
const (
	fashionSide  = 28    // images are 28x28, one channel
	fashionTrain = 60000 // examples in train-*-ubyte
	fashionTest  = 10000 // examples in t10k-*-ubyte
	fashionClass = 10
)

// fashionHint is the error advice for Fashion-MNIST files.
var fashionHint = hint{
	what: "a Fashion-MNIST %s file",
	fix: "reinstall with make data (the Debian package dataset-fashion-mnist), " +
		"or set " + EnvFashionDir + " (or the config's data dir) to a folder with intact copies",
	missing: "run make data (it installs the Debian package dataset-fashion-mnist into " + DefaultFashionDir + "), " +
		"or set " + EnvFashionDir + " (or the config's data dir) to a folder holding " +
		"train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (raw or .gz)",
}

// LoadFashionMNIST loads Fashion-MNIST from dir (dir == "" means
// $PERTURB_FASHION_MNIST if set, else DefaultFashionDir) into a pool of
// 60000 training then 10000 test images, 1x28x28 each, 10 classes.
//
// The folder must hold train-images-idx3-ubyte, train-labels-idx1-ubyte,
// t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each raw or gzipped
// with a .gz suffix (the raw file is preferred when both exist). Besides the
// checks of [ReadIDXImages] and [ReadIDXLabels], the loader requires 28x28
// images, as many labels as images in each split, the split sizes above and
// labels below 10.
func LoadFashionMNIST(dir string) (*Pool, error) {
	if os.Getenv(EnvFashionPartial) == "1" {
		return loadFashion(dir, -1, -1)
	}
	return loadFashion(dir, fashionTrain, fashionTest)
}

// fashionSplit is what one split (train or t10k) of Fashion-MNIST holds.
type fashionSplit struct {
	pixels, labels []uint8
	err            error
}

// loadFashion is LoadFashionMNIST with the expected split sizes as
// parameters, so that tests can use small files.
func loadFashion(dir string, wantTrain, wantTest int) (*Pool, error) {
	dir, src := resolveDir(dir, EnvFashionDir, DefaultFashionDir, os.Getenv)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%s: Fashion-MNIST folder (%s) does not exist or is not a folder: %w; %s",
			dir, src, ErrMissing, fashionHint.missing)
	}
	splits := []struct {
		prefix, desc string
		want         int
	}{
		{"train", "training", wantTrain},
		{"t10k", "test", wantTest},
	}
	res := make([]fashionSplit, len(splits))
	var wg sync.WaitGroup
	for i, s := range splits {
		wg.Go(func() {
			res[i].pixels, res[i].labels, res[i].err = loadFashionSplit(dir, s.prefix, s.desc, s.want)
		})
	}
	wg.Wait()
	var pixels, labels []uint8
	for _, r := range res {
		if r.err != nil {
			return nil, r.err
		}
	}
	pixels = make([]uint8, 0, len(res[0].pixels)+len(res[1].pixels))
	labels = make([]uint8, 0, len(res[0].labels)+len(res[1].labels))
	for _, r := range res {
		pixels = append(pixels, r.pixels...)
		labels = append(labels, r.labels...)
	}
	return NewPool("fashion-mnist", 1, fashionSide, fashionSide, fashionClass, pixels, labels)
}

// loadFashionSplit reads and checks prefix-images-idx3-ubyte and
// prefix-labels-idx1-ubyte; want < 0 accepts any number of examples.
func loadFashionSplit(dir, prefix, desc string, want int) (pixels, labels []uint8, err error) {
	ipath, err := fashionFile(dir, prefix+"-images-idx3-ubyte")
	if err != nil {
		return nil, nil, err
	}
	lpath, err := fashionFile(dir, prefix+"-labels-idx1-ubyte")
	if err != nil {
		return nil, nil, err
	}
	pixels, n, rows, cols, err := readIDXImages(ipath, fashionHint)
	if err != nil {
		return nil, nil, err
	}
	if rows != fashionSide || cols != fashionSide {
		return nil, nil, corrupt(ipath, fmt.Sprintf("images are %dx%d, want %dx%d", rows, cols, fashionSide, fashionSide),
			fashionHint.notA("image"))
	}
	labels, err = readIDXLabels(lpath, fashionHint)
	if err != nil {
		return nil, nil, err
	}
	if len(labels) != n {
		return nil, nil, corrupt(lpath, fmt.Sprintf("%d labels, but %s has %d images", len(labels), ipath, n),
			"the two files must belong to the same split — "+fashionHint.fix)
	}
	if want >= 0 && n != want {
		return nil, nil, corrupt(ipath, fmt.Sprintf("%d images, want %d (the Fashion-MNIST %s split)", n, want, desc),
			fashionHint.damaged())
	}
	for i, l := range labels {
		if l >= fashionClass {
			return nil, nil, corrupt(lpath, fmt.Sprintf("label %d of example %d is out of range [0, %d)", l, i, fashionClass),
				fashionHint.damaged())
		}
	}
	return pixels, labels, nil
}

// fashionFile returns dir/base if it exists, else dir/base.gz if that
// exists, else an error wrapping ErrMissing.
func fashionFile(dir, base string) (string, error) {
	raw := filepath.Join(dir, base)
	if _, err := os.Stat(raw); err == nil {
		return raw, nil
	}
	gz := raw + ".gz"
	if _, err := os.Stat(gz); err == nil {
		return gz, nil
	}
	return "", fmt.Errorf("%s: no such file (nor %s): %w; %s", gz, base, ErrMissing, fashionHint.missing)
}
