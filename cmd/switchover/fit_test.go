package main

import (
	"strings"
	"testing"
)

// Figures are never cut: at 100 and at 60 columns the canary's line keeps
// "longest write gap 273.2 ms" whole; descriptions are shortened first.
func TestFitLabelledNeverCutsAFigure(t *testing.T) {
	canary := "5.2s: canary: 18734 commits acknowledged in 5.2s, 0 client errors, longest write gap 273.2 ms"
	long := "pass  every host takes commands (login, user switch, paths): pg1 on local as postgres: u=$(id -un); r=0; [ -f /usr/lib/postgresql/15/bin/pg_ctl ] || r=1; replay at most 16MB behind"
	prefix := "      done      "
	tests := []struct {
		name     string
		text     string
		width    int
		maxLines int
		keep     []string // must be there, whole
		lines    int      // how many lines it must take (0: any)
		cut      string   // a text that must have gone
	}{
		{"fits", "short line 12 ms", 80, 0, []string{"short line 12 ms"}, 1, ""},
		{"canary at 100", canary, 100, 0, []string{"longest write gap 273.2 ms", "18734 commits"}, 2, ""},
		{"canary at 60", canary, 60, 0, []string{"longest write gap 273.2 ms", "18734 commits", "0 client errors"}, 0, ""},
		{"a description kept to 3 lines", long, 80, 3, []string{"every host takes commands"}, 3, "16MB"},
		{"a description that fits in its lines is whole", long, 200, 3, []string{"replay at most 16MB behind"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fitLabelled(prefix, tt.text, tt.width, tt.maxLines)
			lines := strings.Split(got, "\n")
			if !strings.HasPrefix(got, prefix) {
				t.Errorf("the label column moved: %q", got)
			}
			for i, l := range lines {
				if runeLen(l) > tt.width {
					t.Errorf("line of %d columns, wider than %d: %q", runeLen(l), tt.width, l)
				}
				if i > 0 && !strings.HasPrefix(l, strings.Repeat(" ", len(prefix))) {
					t.Errorf("continuation line not under the text: %q", l)
				}
			}
			if tt.lines > 0 && len(lines) != tt.lines {
				t.Errorf("%d lines, want %d:\n%s", len(lines), tt.lines, got)
			}
			// Words are never cut: every word shown is one of the text's
			// (the mark of a cut stands alone).
			words := map[string]bool{}
			for _, w := range strings.Fields(tt.text) {
				words[w] = true
			}
			for _, w := range strings.Fields(strings.TrimPrefix(got, prefix)) {
				if w != "…" && !words[w] && !strings.Contains(prefix, w) {
					t.Errorf("the word %q is not one of the text's: a word was cut", w)
				}
			}
			joined := strings.Join(strings.Fields(got), " ")
			for _, k := range tt.keep {
				if !strings.Contains(joined, k) {
					t.Errorf("lost %q:\n%s", k, got)
				}
			}
			if tt.cut != "" {
				if strings.Contains(got, tt.cut) {
					t.Errorf("kept %q past its lines:\n%s", tt.cut, got)
				}
				if !strings.HasSuffix(got, " …") {
					t.Errorf("a shortened text does not end with the mark of its cut: %q", got)
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
