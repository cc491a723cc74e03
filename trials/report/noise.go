package report

// noise adds the section of a floating-point noise study stored with the
// run (issue 6): not yet rendered.
func (b *builder) noise() error { return nil }
