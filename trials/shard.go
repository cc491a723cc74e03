package trials

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/perturb/perturb/trials/config"
)

// Shard selects a deterministic 1/N of a config's trials. The trials of
// each cell (model, init, optimiser, eta) are dealt round-robin by trial
// index, each cell starting one shard further on: trial i of the c-th cell
// (in plan order) goes to shard (i + c) mod N + 1. So every shard holds
// every cell (when the trial count is at least N) and the same number of
// trials to within N−1, and shards take about equally long, whatever
// divides what. The zero Shard holds every trial. A trial's row does not
// depend on its shard: its randomness is keyed by its identity only.
type Shard struct {
	I, N int
}

// ParseShard parses "I/N" with 1 ≤ I ≤ N.
func ParseShard(s string) (Shard, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(strings.TrimSpace(a))
	n, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 1 || i > n {
		return Shard{}, fmt.Errorf("invalid shard %q: want I/N with 1 <= I <= N, e.g. 3/8 for the third of eight shards", s)
	}
	return Shard{I: i, N: n}, nil
}

// All reports whether s holds every trial (the zero Shard, or 1/1).
func (s Shard) All() bool { return s.N <= 1 }

// String formats s as "I/N", or "" for the zero Shard.
func (s Shard) String() string {
	if s.N == 0 {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.I, s.N)
}

// Assign returns, for each trial of Plan(c) in order, the shard (1..n)
// of n that holds it.
func Assign(c *config.Config, n int) []int {
	plan := Plan(c)
	out := make([]int, len(plan))
	if n <= 1 {
		for i := range out {
			out[i] = 1
		}
		return out
	}
	type cell struct {
		model, label string
		init         int
		eta          float64
	}
	ord := map[cell]int{}
	for pos, t := range plan {
		k := cell{t.Model, t.Opt.Label, t.Init, t.Eta}
		c, ok := ord[k]
		if !ok {
			c = len(ord)
			ord[k] = c
		}
		out[pos] = (t.Index+c)%n + 1
	}
	return out
}

// ShardPlan is the part of Plan(c) that shard s holds, in plan order.
func ShardPlan(c *config.Config, s Shard) []Trial {
	plan := Plan(c)
	if s.All() {
		return plan
	}
	var out []Trial
	for pos, i := range Assign(c, s.N) {
		if i == s.I {
			out = append(out, plan[pos])
		}
	}
	return out
}
