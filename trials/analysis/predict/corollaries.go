package predict

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/perturb/perturb/trials/analysis/stats"
)

// GDMinusSGD is Corollary 3's comparison: GD for N steps minus SGD with
// batch 1 for one epoch (T = N), at the same η. Its order-2 coefficient is
// (N−1)/4 · G·∇tr C (the G·H·G and tr(HC) terms agree); the order-3
// coefficient comes from TestLoss.
func GDMinusSGD(n int) (Polynomial, error) {
	gd, err := GD(n, n)
	if err != nil {
		return Polynomial{}, err
	}
	sgd, err := SGD(n, 1, 1, nil)
	if err != nil {
		return Polynomial{}, err
	}
	return TestLoss(Count(gd)).Minus(TestLoss(Count(sgd))), nil
}

// GDCMinusSGD is the order-2 prediction of GDC minus SGD (Corollary 3's
// second part): zero. GDC's update adds −η ∇R with R = η(N−1)/(4N) trĈ,
// so over T = N steps A₂ gains −N · (N−1)/(4N) ∇trĈ(θ₀), whose expectation
// is −(N−1)/4 ∇tr C; that moves c₂ by −(N−1)/4 G·∇tr C, exactly cancelling
// GD − SGD. The order-3 term would need derivatives of trĈ beyond the
// estimated statistics; the claim tested is that |GDC − SGD| shrinks like
// η³ while |GD − SGD| shrinks like η².
func GDCMinusSGD() Polynomial { return Polynomial{Linear{}, Linear{}, Linear{}} }

// EpochsMinusOne is Corollary 4's comparison: SGD with batch b for e
// epochs at η/e minus SGD for one epoch at η (same n and b; reshuffled or
// not). Coefficient k of the e-epoch run scales by e^{−k}; to order 2
// (Proposition 2) the difference is
//
//	η² [ N(E−1)/(2EB) G·H·G + N(E−1)/(4EB²) G·∇tr C ],
//
// the second term being the paper's displacement (E−1)/(4E)·N ∇tr C
// (B = 1) dotted with G; order 3 comes from TestLoss.
func EpochsMinusOne(n, b, e int, reshuffle bool) (Polynomial, error) {
	ce, err := ExpectedCounts(n, b, e, reshuffle, 2000, 1)
	if err != nil {
		return Polynomial{}, err
	}
	c1, err := ExpectedCounts(n, b, 1, false, 1, 1)
	if err != nil {
		return Polynomial{}, err
	}
	return TestLoss(ce).ScaleEta(1 / float64(e)).Minus(TestLoss(c1)), nil
}

// SDEAtMinimum is the expected test loss of the population SDE (optimiser
// sde with population = true: R substeps per step, drift −(η/R)G(θ),
// noise of covariance η²C(θ)/(R·B)) for T steps, started at a test
// minimum (G = 0). Derivation: θ − θ₀ = ηX + η²Y + O(η³) with X = Σ_u
// C^{1/2}ξ_u/√(RB) over the TR substeps (Cov X_T = T C/B) and Y = −(1/R)
// Σ_u H X_u + (terms of zero mean against X_T: the noise's change with θ
// multiplies an independent ξ_u). With G = 0 the loss is L + ½δᵀHδ +
// J(δ,δ,δ)/6 + …, E J(X,X,X) = 0 for Gaussian X, and E[X_TᵀHH X_u] =
// (u/R) tr(HHC)/B, so
//
//	c₁ = 0,  c₂ = T/(2B) tr(HC),  c₃ = −(1/R²) Σ_{u<TR} u · tr(HHC)/B = −(T²/2 − T/(2R)) tr(HHC)/B.
//
// SGD (B = E = 1, T = N) at G = 0 has c₃ = −T(T−1)/2 tr(HHC) − (T/6) S:J
// (TestLoss), so SGD − SDE = η³ T [(1 − 1/R)/2 · tr(HHC) − S:J/6]: the
// discretisation term and the skewness term of Corollary 5.
func SDEAtMinimum(t, b, r int) Polynomial {
	ft, fb, fr := float64(t), float64(b), float64(r)
	return Polynomial{
		Linear{},
		Linear{stats.TrHC: ft / (2 * fb)},
		Linear{stats.TrHHC: -(ft*ft/2 - ft/(2*fr)) / fb},
	}
}

// ArchimedesDrift is Corollary 1 on Archimedes: SGD started in the valley
// moves along +z by η²/6 per step to leading order, so after T steps the
// expected z is T η²/6.
func ArchimedesDrift(eta float64, t int) float64 { return float64(t) * eta * eta / 6 }

// Overfit is Corollary 2 resummed for GD started at a test minimum of a
// model small enough to diagonalise its Hessian: with the training loss
// L̂ ≈ L + ĝ·δ + ½δᵀHδ near the minimum (ĝ of mean 0 and covariance C/N),
// T steps of GD give δ_T = −(I − (I − ηH)^T) H⁻¹ ĝ, so the expected test
// loss rises by (overfitting)
//
//	½ E[δᵀHδ] = ½ tr( (C/N) H⁻¹ (I − (I − ηH)^T)² )
//
// and the expected gap (test minus training loss, with E L̂(θ*) = L(θ*)) is
//
//	gap = −E[ĝ·δ_T] = tr( (C/N) H⁻¹ (I − (I − ηH)^T) ).
//
// The paper writes exp(−ηTH) for (I − ηH)^T (equal to first order in η);
// exp selects that form. Eigenvalues of H must be positive.
func Overfit(h, c [][]float64, n int, eta float64, t int, exp bool) (overfit, gap float64, err error) {
	p := len(h)
	if p == 0 || len(c) != p {
		return 0, 0, fmt.Errorf("predict: Overfit needs square H and C of the same size (got %d and %d)", len(h), len(c))
	}
	hs := mat.NewSymDense(p, nil)
	cs := mat.NewDense(p, p, nil)
	for i := range p {
		if len(h[i]) != p || len(c[i]) != p {
			return 0, 0, fmt.Errorf("predict: Overfit: row %d of H or C has the wrong length", i)
		}
		for j := range p {
			hs.SetSym(i, j, (h[i][j]+h[j][i])/2)
			cs.Set(i, j, c[i][j])
		}
	}
	var eig mat.EigenSym
	if !eig.Factorize(hs, true) {
		return 0, 0, fmt.Errorf("predict: Overfit: the eigendecomposition of H failed")
	}
	vals := eig.Values(nil)
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	// C in H's eigenbasis: VᵀCV; only its diagonal enters the traces.
	var cv, vcv mat.Dense
	cv.Mul(cs, &vecs)
	vcv.Mul(vecs.T(), &cv)
	for i, lam := range vals {
		if lam <= 0 {
			return 0, 0, fmt.Errorf("predict: Overfit: H has eigenvalue %g ≤ 0; Corollary 2 needs a non-degenerate minimum", lam)
		}
		var decay float64
		if exp {
			decay = math.Exp(-eta * float64(t) * lam)
		} else {
			decay = math.Pow(1-eta*lam, float64(t))
		}
		ci := vcv.At(i, i) / float64(n)
		overfit += ci * (1 - decay) * (1 - decay) / (2 * lam)
		gap += ci * (1 - decay) / lam
	}
	return overfit, gap, nil
}
