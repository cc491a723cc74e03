// Package plots draws the figures of perturb's reports with
// gonum.org/v1/plot: measured means with their 95% intervals, predicted
// curves with translucent bands, "A against B" scatter plots with error bars
// in both directions, fitted power laws, and histograms of noise draws.
//
// A [Figure] is a plain value describing one plot; [Figure.Save] writes it as
// dir/name.png (6×4 inch at [DPI] dots per inch), dir/name.svg and
// dir/name.pdf, each through a temporary file renamed into place, so a
// reader never sees a half written file. [Histogram] builds the histogram of
// a sample, optionally with the normal density of the same mean and standard
// deviation; it saves the same way. With Figure.DataRange only the measured
// and scatter points set the axes, and prediction lines are clipped to them.
//
// An [EtaFigure] is a measured quantity against η with its predictions of
// order 1, 2 and 3: the predictions are evaluated on a dense log-spaced η
// grid over the measured range (200 points, see [EtaFigure.PredictionGrid])
// and drawn only where η·T is within EtaTLimit; the y-range is set by the
// measured points and their 95% intervals (plus a margin), never by a
// prediction; colour goes by order, line style by optimiser ([DashFor]:
// solid sgd, dashed gd, dotted and dash-dot others) and marker by
// optimiser (or run); a residual panel below shows z = (measured −
// predicted)/√(se² + se_pred²) per order at the measured η with guides at
// ±1.96; the legend stands in a column right of the panels.
//
// Log axes. With LogX or LogY set, values that a log axis cannot show are
// dropped: a point whose coordinate on a log axis is not positive is left out
// and counted (see [Figure.Render], and a note in the legend says how many);
// an interval whose lower end is not positive is kept, and its bar runs to
// the bottom (or left) edge of the axis, which is then placed a little below
// the lowest positive value drawn. Ticks on log axes are at 1, 2, …, 9 times
// powers of ten, labelled at the powers of ten when at least two of them are
// in range, otherwise at 1, 2 and 5 times powers of ten.
//
// Determinism. Rendering uses no clock, no randomness and no map iteration:
// the same figure gives byte-identical SVG and PNG files (both are checked by
// the tests); the PDF records its creation time. The SVG names the Liberation Sans font without embedding it;
// Liberation Sans is metric-compatible with Arial, the usual fallback.
//
// Colours. In a Figure every series (measured, line, scatter, fit, in that
// order) takes the next colour of a ten-colour palette (the "Tableau 10"
// colours) and the next marker shape, so series are distinct even past ten.
// The legend goes in the corner of the plot with the fewest data (markers,
// error bars, lines). An EtaFigure colours its curves by order
// ([OrderColor]) and its markers from [GroupPalette], which holds no order
// colour.
package plots
