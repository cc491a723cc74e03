package graph

// Polarisation: the bilinear form uᵀHw and the trilinear form J(a, b, c)
// from Taylor coefficients along combinations of directions, where
// c_2(v) = vᵀHv/2 and c_3(v) = J(v, v, v)/6 (Coeffs; also any other
// symmetric H and J, such as the landscapes'). By bilinearity,
//
//	c_2(u+w) − c_2(u−w) = ((u+w)ᵀH(u+w) − (u−w)ᵀH(u−w))/2 = 2 uᵀHw.
//
// For J, expand J(x, x, x) with x = a + βb + γc (β, γ = ±1) into its 27
// ordered monomials J(x_1, x_2, x_3), x_i ∈ {a, βb, γc}: one with i
// factors b and j factors c carries β^i γ^j, and Σ_{β,γ} βγ·β^i γ^j is 4
// when i and j are both odd, else 0. With i + j ≤ 3 that leaves i = j = 1:
// the 6 orderings of (a, b, c), each J(a, b, c) by symmetry. So
//
//	Σ_{β,γ} βγ J(x, x, x) = 24 J(a, b, c),
//	J(a, b, c) = (c_3(a+b+c) − c_3(a+b−c) − c_3(a−b+c) + c_3(a−b−c))/4.
//
// The same counting gives, for a repeated argument,
//
//	c_3(u+w) − c_3(u−w) = (2·3 J(u, u, w) + 2 J(w, w, w))/6,
//	J(u, u, w) = c_3(u+w) − c_3(u−w) − 2 c_3(w),
//
// and the seven-direction inclusion–exclusion form (the paper's), in
// which only the monomials containing each of a, b, c once survive,
//
//	J(a, b, c) = c_3(a+b+c) − c_3(a+b) − c_3(a+c) − c_3(b+c) + c_3(a) + c_3(b) + c_3(c),
//
// needs seven jets instead of four; it is given for comparison.

// BilinearDirs returns the directions u+w and u−w whose coefficients c_2
// Bilinear combines into uᵀHw.
func BilinearDirs(u, w []float64) [][]float64 {
	return [][]float64{combine(1, u, 1, w), combine(1, u, -1, w)}
}

// Bilinear returns uᵀHw = (c_2(u+w) − c_2(u−w))/2 from the coefficients
// c2 of the directions of BilinearDirs, in that order.
func Bilinear(c2 [2]float64) float64 { return (c2[0] - c2[1]) / 2 }

// TrilinearDirs returns the directions a+b+c, a+b−c, a−b+c and a−b−c whose
// coefficients c_3 Trilinear combines into J(a, b, c).
func TrilinearDirs(a, b, c []float64) [][]float64 {
	ab, amb := combine(1, a, 1, b), combine(1, a, -1, b)
	return [][]float64{combine(1, ab, 1, c), combine(1, ab, -1, c), combine(1, amb, 1, c), combine(1, amb, -1, c)}
}

// Trilinear returns J(a, b, c) from the coefficients c3 of the directions
// of TrilinearDirs, in that order.
func Trilinear(c3 [4]float64) float64 { return (c3[0] - c3[1] - c3[2] + c3[3]) / 4 }

// TrilinearDirs7 returns the seven directions a+b+c, a+b, a+c, b+c, a, b,
// c of the inclusion–exclusion form.
func TrilinearDirs7(a, b, c []float64) [][]float64 {
	ab := combine(1, a, 1, b)
	return [][]float64{combine(1, ab, 1, c), ab, combine(1, a, 1, c), combine(1, b, 1, c),
		append([]float64(nil), a...), append([]float64(nil), b...), append([]float64(nil), c...)}
}

// Trilinear7 returns J(a, b, c) from the coefficients c3 of the directions
// of TrilinearDirs7, in that order.
func Trilinear7(c3 [7]float64) float64 {
	return c3[0] - c3[1] - c3[2] - c3[3] + c3[4] + c3[5] + c3[6]
}

// SymTrilinearDirs returns the directions u+w, u−w and w whose
// coefficients c_3 SymTrilinear combines into J(u, u, w).
func SymTrilinearDirs(u, w []float64) [][]float64 {
	return [][]float64{combine(1, u, 1, w), combine(1, u, -1, w), append([]float64(nil), w...)}
}

// SymTrilinear returns J(u, u, w) = c_3(u+w) − c_3(u−w) − 2 c_3(w) from
// the coefficients c3 of the directions of SymTrilinearDirs, in that
// order.
func SymTrilinear(c3 [3]float64) float64 { return c3[0] - c3[1] - 2*c3[2] }

// combine returns α·x + β·y.
func combine(alpha float64, x []float64, beta float64, y []float64) []float64 {
	if len(x) != len(y) {
		panic("graph: polarisation of directions of different lengths")
	}
	out := make([]float64, len(x))
	for i := range x {
		out[i] = alpha*x[i] + beta*y[i]
	}
	return out
}
