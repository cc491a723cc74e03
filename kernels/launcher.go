package kernels

// Launcher implements the Device operations that are one kernel launch
// each, from their launch plans (launch.go), over a device's own launch
// function: the GPU device (kernels/cudev) and the CUDA emulator
// (kernels/cudaemu) embed it, so both launch every kernel alike.
type Launcher struct {
	// Launch plans a launch from the operands' lengths and runs it on the
	// operands.
	Launch func(plan func(lens []int) (Launch, error), bufs ...Buffer) error
}

// BiasAct finishes a dense layer in place.
func (l Launcher) BiasAct(z Buffer, batch, m, n int, s float64, bias Buffer, cm, act bool) error {
	return l.Launch(func(l []int) (Launch, error) { return BiasActLaunch(l, batch, m, n, s, cm, act) }, z, bias)
}

// Unary applies f elementwise.
func (l Launcher) Unary(f Unary, out, in Buffer) error {
	return l.Launch(func(l []int) (Launch, error) { return UnaryLaunch(l, f) }, out, in)
}

// Binary applies f elementwise.
func (l Launcher) Binary(f Binary, out, a, b Buffer) error {
	return l.Launch(func(l []int) (Launch, error) { return BinaryLaunch(l, f) }, out, a, b)
}

// TanhBack sets (1 − t²) ⊙ g.
func (l Launcher) TanhBack(out, t, g Buffer) error {
	return l.Launch(TanhBackLaunch, out, t, g)
}

// TanhBack2 sets −2 t ⊙ g ⊙ h.
func (l Launcher) TanhBack2(out, t, g, h Buffer) error {
	return l.Launch(TanhBack2Launch, out, t, g, h)
}

// Sum reduces the middle axis.
func (l Launcher) Sum(out, in Buffer, outer, mid, inner int) error {
	return l.Launch(func(l []int) (Launch, error) { return SumLaunch(l, outer, mid, inner) }, out, in)
}

// Repeat broadcasts along a middle axis.
func (l Launcher) Repeat(out, in Buffer, outer, reps, inner int) error {
	return l.Launch(func(l []int) (Launch, error) { return RepeatLaunch(l, outer, reps, inner) }, out, in)
}

// Im2col writes the patch matrices.
func (l Launcher) Im2col(c Conv, cols, images Buffer) error {
	return l.Launch(func(l []int) (Launch, error) { return Im2colLaunch(l, c) }, cols, images)
}

// Col2im sums the patch matrices into images.
func (l Launcher) Col2im(c Conv, images, cols Buffer) error {
	return l.Launch(func(l []int) (Launch, error) { return Col2imLaunch(l, c) }, images, cols)
}

// Flatten permutes maps and rows.
func (l Launcher) Flatten(out, in Buffer, trials, c, images, p int, inverse bool) error {
	return l.Launch(func(l []int) (Launch, error) {
		return FlattenLaunch(l, trials, c, images, p, inverse)
	}, out, in)
}

// LogSoftmax is the row-wise log-softmax.
func (l Launcher) LogSoftmax(out, in Buffer, rows, c int) error {
	return l.Launch(func(l []int) (Launch, error) { return LogSoftmaxLaunch(l, rows, c) }, out, in)
}

// LogSoftmaxBack is its adjoint.
func (l Launcher) LogSoftmaxBack(out, y, g Buffer, rows, c int) error {
	return l.Launch(func(l []int) (Launch, error) { return LogSoftmaxBackLaunch(l, rows, c) }, out, y, g)
}

// CrossEntropy is the fused per-row loss and correctness.
func (l Launcher) CrossEntropy(loss, correct, logits, labels Buffer, trials, rows, c int) error {
	return l.Launch(func(l []int) (Launch, error) { return CrossEntropyLaunch(l, trials, rows, c) },
		loss, correct, logits, labels)
}

// TanhJet propagates Taylor coefficients through tanh.
func (l Launcher) TanhJet(t, z Buffer, deg, n int) error {
	return l.Launch(func(l []int) (Launch, error) { return TanhJetLaunch(l, deg, n) }, t, z)
}

// Round rounds to bf16, fp16 or tf32.
func (l Launcher) Round(b Buffer, f Format) error {
	return l.Launch(func(l []int) (Launch, error) { return RoundLaunch(l[0], f), nil }, b)
}

// Fill sets every element to v (the fill kernel).
func (l Launcher) Fill(b Buffer, v float64) error {
	return l.Launch(func(l []int) (Launch, error) { return FillLaunch(l[0], v), nil }, b)
}
