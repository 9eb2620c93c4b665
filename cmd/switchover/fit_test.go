package main

import (
	"strings"
	"testing"
)

// Figures are never cut: at 100 and at 60 columns the canary's line keeps
// "longest write gap 273.2 ms" whole; descriptions are shortened first.
func TestFitLineNeverCutsAFigure(t *testing.T) {
	canary := "      done      5.2s: canary: 18734 commits acknowledged in 5.2s, 0 client errors, longest write gap 273.2 ms"
	tests := []struct {
		name  string
		in    string
		width int
		keep  []string
		cut   string // a text that must have gone
	}{
		{"fits", "short line 12 ms", 80, []string{"short line 12 ms"}, ""},
		{"canary at 100", canary, 100, []string{"longest write gap 273.2 ms", "18734 commits"}, ""},
		{"canary at 60", canary, 60, []string{"longest write gap 273.2 ms", "18734 commits", "0 client errors"}, ""},
		{"description cut first", "      pass      every member answers and replicates and nothing else is wrong, lag 12 ms", 60,
			[]string{"lag 12 ms"}, "nothing else is wrong"},
		{"final line at 60", "done in 14.8s; actions ran: start-canary, pause-pooler; clients held 273 ms, 0 lost", 60,
			[]string{"done in 14.8s", "clients held 273 ms", "0 lost"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fitLine(tt.in, tt.width, strings.Repeat(" ", 16))
			joined := strings.Join(strings.Fields(got), " ")
			for _, k := range tt.keep {
				if !strings.Contains(joined, k) {
					t.Errorf("fitLine(%d) lost %q:\n%s", tt.width, k, got)
				}
			}
			if tt.cut != "" && strings.Contains(got, tt.cut) {
				t.Errorf("fitLine(%d) kept the description %q whole:\n%s", tt.width, tt.cut, got)
			}
			for _, l := range strings.Split(got, "\n") {
				if runeLen(l) > tt.width {
					t.Errorf("line of %d columns, wider than %d: %q", runeLen(l), tt.width, l)
				}
			}
		})
	}
}

// The spinner's line never wraps, and keeps its elapsed time and deadline
// visible however narrow the terminal: the description is what is cut.
func TestSpinLineKeepsTheClock(t *testing.T) {
	for _, width := range []int{160, 100, 60, 40} {
		h := newHumanView(nil)
		h.terminal(width, false)
		desc := "pg.replication: pg2 streams from pg1 with lag under 16MB: lag 1.2 MB, replay behind by 3 segments"
		got := h.spinLine("⠋ waiting", desc, " (2.4s of 30.0s)")
		if runeLen(got) > h.width-1 {
			t.Errorf("width %d: %d columns, would wrap: %q", width, runeLen(got), got)
		}
		if !strings.HasSuffix(got, " (2.4s of 30.0s)") {
			t.Errorf("width %d: the clock is not whole at the end: %q", width, got)
		}
	}
}
