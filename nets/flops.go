package nets

// DenseFLOPs is the number of floating-point operations of one example's
// forward pass counted the dense way: 2·in·out per weight-matrix product
// and per output position (each convolution applies its (c·5·5) × 10
// kernel matrix at every output pixel). Activations, biases and the loss
// are not counted. It is the yardstick of perturb bench's eval_gflops.
func (a *Arch) DenseFLOPs() float64 {
	products := func(positions int, p Param) float64 {
		return 2 * float64(positions) * float64(p.Shape[0]) * float64(p.Shape[1])
	}
	switch a.Name {
	case "convnet":
		h1, w1 := convOut(a.Height), convOut(a.Width)
		h2, w2 := convOut(h1), convOut(w1)
		return products(h1*w1, a.Params[0]) + products(h2*w2, a.Params[2]) +
			products(1, a.Params[4]) + products(1, a.Params[6])
	default:
		return products(1, a.Params[0])
	}
}
