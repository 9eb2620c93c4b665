package runbook

import (
	"testing"
	"time"
)

// TestGuardLive: a resumed run waits for its guard only while the guard
// may still be at work.
func TestGuardLive(t *testing.T) {
	soon := time.Now().Add(5 * time.Second)
	past := time.Now().Add(-guardActTimeout - time.Minute)
	cases := []struct {
		name string
		recs []GuardRecord
		live bool
	}{
		{"no record", nil, false},
		{"started, budget to go", []GuardRecord{{Event: "started", Until: soon}}, true},
		{"started, then output", []GuardRecord{{Event: "started", Until: soon}, {Event: "output"}}, true},
		{"released", []GuardRecord{{Event: "started", Until: soon}, {Event: "released"}}, false},
		{"acted", []GuardRecord{{Event: "started", Until: soon}, {Event: "acted"}}, false},
		{"started long ago: the guard died", []GuardRecord{{Event: "started", Until: past}}, false},
		{"an older guard's record without a budget", []GuardRecord{{Event: "started"}}, false},
		{"a second hold started after the first acted", []GuardRecord{{Event: "started", Until: soon}, {Event: "acted"}, {Event: "started", Until: soon}}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			until, live := guardLive(c.recs)
			if live != c.live {
				t.Fatalf("guardLive = %v (until %s); want %v", live, until, c.live)
			}
			if live && until.Before(soon) {
				t.Errorf("live until %s, before the budget's end %s", until, soon)
			}
		})
	}
}
