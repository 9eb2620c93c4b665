package fleet

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// clustersOf makes n clusters c1..cN, labelled by labels(i) (i from 1).
func clustersOf(n int, labels func(i int) map[string]string) []*Cluster {
	var out []*Cluster
	for i := 1; i <= n; i++ {
		c := &Cluster{Name: fmt.Sprintf("c%d", i), Labels: map[string]string{}}
		if labels != nil {
			c.Labels = labels(i)
		}
		out = append(out, c)
	}
	return out
}

func TestAssign(t *testing.T) {
	t.Parallel()
	dc := func(i int) map[string]string {
		if i%2 == 0 {
			return map[string]string{"dc": "b"}
		}
		return map[string]string{"dc": "a"}
	}
	for _, tt := range []struct {
		name     string
		n        int
		specs    []WaveSpec
		want     string // waves as "name: c1 c2 | name: ..."
		wantProb string
	}{
		{name: "no waves: one of every cluster", n: 3, want: "all: c1 c2 c3"},
		{name: "count, percent, rest", n: 10,
			specs: []WaveSpec{{Name: "canary", Count: 1}, {Name: "second", Percent: 30}, {Name: "rest"}},
			want:  "canary: c1 | second: c2 c3 c4 | rest: c5 c6 c7 c8 c9 c10"},
		{name: "percent rounds up, of all clusters", n: 6,
			specs: []WaveSpec{{Name: "canary", Count: 1}, {Name: "tenth", Percent: 10}, {Name: "rest"}},
			want:  "canary: c1 | tenth: c2 | rest: c3 c4 c5 c6"},
		{name: "selector takes what is left that matches", n: 6,
			specs: []WaveSpec{{Name: "canary", Count: 1}, {Name: "dc-b", Select: map[string]string{"dc": "b"}}, {Name: "rest"}},
			want:  "canary: c1 | dc-b: c2 c4 c6 | rest: c3 c5"},
		{name: "a count over what is left takes the rest", n: 3,
			specs: []WaveSpec{{Name: "canary", Count: 1}, {Name: "big", Count: 5}},
			want:  "canary: c1 | big: c2 c3"},
		{name: "a selector matching nothing left", n: 4,
			specs:    []WaveSpec{{Name: "b", Select: map[string]string{"dc": "b"}}, {Name: "b-again", Select: map[string]string{"dc": "b"}}, {Name: "rest"}},
			wantProb: `1: wave "b-again": select {dc: b} matches no cluster left for it (left: c1, c3)`},
		{name: "a wave with nothing left", n: 2,
			specs:    []WaveSpec{{Name: "all", Percent: 100}, {Name: "more", Count: 1}},
			wantProb: `1: wave "more": no cluster is left for it (the waves before it take all 2)`},
		{name: "the rest, when nothing is left", n: 3,
			specs: []WaveSpec{{Name: "canary", Count: 1}, {Name: "second", Percent: 50}, {Name: "rest"}},
			want:  "canary: c1 | second: c2 c3 | rest: "},
		{name: "percent over 100", n: 2,
			specs:    []WaveSpec{{Name: "all", Percent: 101}},
			wantProb: `0: wave "all": percent 101: want 1 to 100`},
		{name: "clusters in no wave", n: 3,
			specs:    []WaveSpec{{Name: "canary", Count: 1}},
			wantProb: `-1: c2, c3 left in no wave`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cs := clustersOf(tt.n, dc)
			waves, probs := Assign(cs, tt.specs)
			var ps []string
			for _, p := range probs {
				ps = append(ps, fmt.Sprintf("%d: %s", p.Wave, p.Msg))
			}
			if tt.wantProb != "" {
				if len(ps) != 1 || !strings.HasPrefix(ps[0], tt.wantProb) {
					t.Fatalf("problems = %q, want %q", ps, tt.wantProb)
				}
				return
			}
			if len(ps) > 0 {
				t.Fatalf("problems: %q", ps)
			}
			var got []string
			for wi, w := range waves {
				got = append(got, w.Name+": "+strings.Join(w.Clusters, " "))
				for _, name := range w.Clusters {
					for _, c := range cs {
						if c.Name == name && c.Wave != wi {
							t.Errorf("%s.Wave = %d, want %d", name, c.Wave, wi)
						}
					}
				}
			}
			if g := strings.Join(got, " | "); g != tt.want {
				t.Errorf("waves = %s\nwant    %s", g, tt.want)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	cs := clustersOf(5, func(i int) map[string]string {
		if i == 5 {
			return map[string]string{} // no dc label: not bounded by per_label dc
		}
		return map[string]string{"dc": []string{"a", "b"}[i%2]}
	})
	c1, c2, c3, c4, c5 := cs[0], cs[1], cs[2], cs[3], cs[4] // dc b, a, b, a, none
	for _, tt := range []struct {
		name    string
		limits  Limits
		c       *Cluster
		running []*Cluster
		want    bool
	}{
		{"nothing running", Limits{Max: 1}, c1, nil, true},
		{"max reached", Limits{Max: 1}, c2, []*Cluster{c1}, false},
		{"max 0 counts as 1", Limits{}, c2, []*Cluster{c1}, false},
		{"under max", Limits{Max: 2}, c2, []*Cluster{c1}, true},
		{"per label: another value", Limits{Max: 3, PerLabel: map[string]int{"dc": 1}}, c2, []*Cluster{c1}, true},
		{"per label: same value", Limits{Max: 3, PerLabel: map[string]int{"dc": 1}}, c3, []*Cluster{c1}, false},
		{"per label: 2 of one value", Limits{Max: 4, PerLabel: map[string]int{"dc": 2}}, c3, []*Cluster{c1, c2}, true},
		{"per label: without the label", Limits{Max: 4, PerLabel: map[string]int{"dc": 1}}, c5, []*Cluster{c1, c2}, true},
		{"per label: unknown label bounds nothing", Limits{Max: 4, PerLabel: map[string]int{"rack": 1}}, c4, []*Cluster{c2}, true},
	} {
		if got := tt.limits.Allows(tt.c, tt.running); got != tt.want {
			t.Errorf("%s: Allows(%s) = %v, want %v", tt.name, tt.c.Name, got, tt.want)
		}
	}
	if got := (Limits{Max: 2, PerLabel: map[string]int{"dc": 1, "az": 2}}).String(); got != "at most 2 at once, 2 per az, 1 per dc" {
		t.Errorf("String = %q", got)
	}
}

func TestHaltRules(t *testing.T) {
	t.Parallel()
	i64 := func(v int64) *int64 { return &v }
	f64 := func(v float64) *float64 { return &v }
	zero := int64(0)
	strict := HaltRules{LostCommits: 0, WindowOver: 2 * time.Second, ClientErrorsOver: &zero}
	for _, tt := range []struct {
		name  string
		rules HaltRules
		o     Outcome
		want  string
	}{
		{"done, within every rule", strict, Outcome{Figures: Figures{Lost: i64(0), Errors: i64(0), WindowMS: f64(1500)}}, ""},
		{"not exit 0", strict, Outcome{ExitCode: 3, Status: "precondition-failed", Step: "preflight", Error: "precondition failed: long transaction\nmore"},
			`its run exited 3 (precondition-failed) at step preflight: long transaction; more`},
		{"a lost commit", strict, Outcome{Figures: Figures{Lost: i64(1)}}, "1 acknowledged commits lost, over halt.lost_commits 0"},
		{"lost within the rule", HaltRules{LostCommits: 2}, Outcome{Figures: Figures{Lost: i64(2)}}, ""},
		{"a long window", strict, Outcome{Figures: Figures{WindowMS: f64(2500)}}, "clients could not write for 2.5s, over halt.window_over 2s"},
		{"no window rule", HaltRules{}, Outcome{Figures: Figures{WindowMS: f64(99000)}}, ""},
		{"client errors", strict, Outcome{Figures: Figures{Errors: i64(3)}}, "3 client errors, over halt.client_errors_over 0"},
		{"no client error rule", HaltRules{}, Outcome{Figures: Figures{Errors: i64(3)}}, ""},
		{"figures not measured breach nothing", strict, Outcome{}, ""},
	} {
		if got := tt.rules.Breach(tt.o); got != tt.want {
			t.Errorf("%s: Breach = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestVarFlagsAndKey(t *testing.T) {
	t.Parallel()
	c := &Cluster{Vars: map[string]string{"b": "2", "a": "1"}}
	if got := c.VarFlags(); !slices.Equal(got, []string{"a=1", "b=2"}) {
		t.Errorf("VarFlags = %q", got)
	}
	f := &Fleet{Name: "monthly"}
	if f.Key() != "monthly" {
		t.Errorf("Key = %q", f.Key())
	}
	f.Window.NotBefore = time.Date(2026, 12, 8, 23, 0, 0, 0, time.FixedZone("CET", 3600))
	if f.Key() != "monthly@2026-12-08T22:00:00Z" {
		t.Errorf("Key = %q", f.Key())
	}
}
