package report

// sharpness adds the sections of the run's sharpness records (issue 9):
// not yet rendered.
func (b *builder) sharpness() error { return nil }
