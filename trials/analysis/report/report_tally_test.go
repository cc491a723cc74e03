package report

import "testing"

// TestTally checks the verdict words and the tally's text.
func TestTally(t *testing.T) {
	r := &Report{Sections: []Section{
		{Verdicts: []Verdict{{Agrees: true}, {Agrees: false}}},
		{Verdicts: []Verdict{{Inconclusive: true}, {Agrees: true}}},
	}}
	a, d, i := r.Tally()
	if a != 2 || d != 1 || i != 1 {
		t.Errorf("Tally = %d, %d, %d; want 2, 1, 1", a, d, i)
	}
	if got, want := r.TallyText(), "2 of 4 claims agree, 1 disagree, 1 inconclusive"; got != want {
		t.Errorf("TallyText = %q, want %q", got, want)
	}
	for _, tc := range []struct {
		v    Verdict
		want string
	}{{Verdict{Agrees: true}, "agrees"}, {Verdict{}, "disagrees"}, {Verdict{Inconclusive: true}, "inconclusive"}} {
		if got := tc.v.Word(); got != tc.want {
			t.Errorf("%+v.Word() = %q, want %q", tc.v, got, tc.want)
		}
	}
	all := &Report{Sections: []Section{{Verdicts: []Verdict{{Agrees: true}}}}}
	if got, want := all.TallyText(), "1 of 1 claims agree"; got != want {
		t.Errorf("TallyText = %q, want %q", got, want)
	}
}
