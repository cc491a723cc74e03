package nets

// Sample is one training example of a trial: a row of the data pool for
// the image models, a data value x ~ N(0, 1) for the artificial landscapes
// (whose pool is unlimited). Each model reads the field it needs.
type Sample struct {
	Row int
	X   float64
}
