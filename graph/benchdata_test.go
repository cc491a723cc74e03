package graph

import (
	"math/rand/v2"
	"sync"

	"github.com/perturb/perturb/nets"
)

var peBench struct {
	once sync.Once
	d    *Data
}

// peBenchData is 70,000 synthetic Fashion-MNIST-shaped float32 examples
// (standard-normal pixels, uniform labels), made once per test binary.
func peBenchData(a *nets.Arch) *Data {
	peBench.once.Do(func() {
		peBench.d = to32(randomData(a, 70000, rand.New(rand.NewPCG(1, 1))))
	})
	return peBench.d
}
