package landscape

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/integrate/quad"
)

// popNodes is the number of Gauss–Hermite nodes of PopulationGrad: the
// gradients are polynomials of degree at most 2 in x, so the mean and the
// covariance (degree 4) are exact with far fewer.
const popNodes = 12

var popX, popW = func() ([]float64, []float64) {
	xs, ws := make([]float64, popNodes), make([]float64, popNodes)
	quad.Hermite{}.FixedLocations(xs, ws, math.Inf(-1), math.Inf(1))
	for i := range xs {
		// ∫ e^{−t²} f(t) dt with x = √2 t is E f(x) for x ~ N(0, 1) times √π.
		xs[i] *= math.Sqrt2
		ws[i] /= math.Sqrt(math.Pi)
	}
	return xs, ws
}()

// Nodes implements optim.Population.
func (l *Landscape) Nodes() int { return popNodes }

// PopulationGrad implements optim.Population: mean[k] = E_x ∇l_x(theta[k])
// and dev[k][q] = √w_q (∇l_{x_q}(theta[k]) − mean[k]) over x ~ N(0, 1), by
// Gauss–Hermite quadrature (exact for these polynomial gradients).
func (l *Landscape) PopulationGrad(theta [][]float64, mean [][]float64, dev [][][]float64) error {
	if err := l.checkTheta(theta); err != nil {
		return err
	}
	if len(mean) != len(theta) || len(dev) != len(theta) {
		return fmt.Errorf("landscape %s: PopulationGrad got %d theta, %d mean, %d dev", l.name, len(theta), len(mean), len(dev))
	}
	n := l.NumParams()
	for k, t := range theta {
		if len(dev[k]) != popNodes {
			return fmt.Errorf("landscape %s: dev[%d] has %d rows, want %d", l.name, k, len(dev[k]), popNodes)
		}
		clear(mean[k])
		for q, x := range popX {
			l.SampleGrad(t, x, dev[k][q][:n])
			for i := range n {
				mean[k][i] += popW[q] * dev[k][q][i]
			}
		}
		for q := range popX {
			s := math.Sqrt(popW[q])
			for i := range n {
				dev[k][q][i] = s * (dev[k][q][i] - mean[k][i])
			}
		}
	}
	return nil
}
