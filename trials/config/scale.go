package config

import (
	"fmt"
	"regexp"
	"strconv"
)

var countLine = regexp.MustCompile(`(?m)^(\s*count\s*=\s*)(\d+)(.*)$`)

// Scaled returns c with its trial count divided by s (rounded up, at least
// 1), for a quick look at a paper-scale config: the config text's
// "count = N" line is rewritten (with a comment saying so) and parsed
// again, so the run stores and hashes the config it actually ran. s = 1
// returns c.
func (c *Config) Scaled(s int) (*Config, error) {
	if s < 1 {
		return nil, fmt.Errorf("--scale %d: use a positive divisor of the trial count (1 = the config as written)", s)
	}
	if s == 1 {
		return c, nil
	}
	locs := countLine.FindAllStringSubmatchIndex(c.Text, -1)
	if len(locs) != 1 {
		return nil, fmt.Errorf("%s: --scale needs exactly one line \"count = N\" in [trials] to rewrite, found %d; edit the count instead", c.Path, len(locs))
	}
	n := (c.Trials.Count + s - 1) / s
	l := locs[0]
	text := c.Text[:l[4]] + strconv.Itoa(n) + c.Text[l[5]:l[7]] + fmt.Sprintf(" # --scale %d of %d", s, c.Trials.Count) + c.Text[l[7]:]
	out, err := Parse(c.Path, text)
	if err != nil {
		return nil, fmt.Errorf("%s with --scale %d: %w", c.Path, s, err)
	}
	return out, nil
}
