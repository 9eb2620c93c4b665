package topology

import (
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/pg"
)

// A delayed standby is never a candidate, however caught up; a standby
// read a moment after the primary is never "-448 bytes behind".
func TestCandidatesNeverADelayedStandby(t *testing.T) {
	lag := func(n int64) *int64 { return &n }
	standby := func(name string, behind int64, delay time.Duration) *Node {
		return &Node{Name: name, Role: RoleStandby, Streaming: true, Upstream: "127.0.0.1:5432", UpstreamNode: "pg1",
			Timeline: 1, LagBytes: lag(behind), State: pg.State{Role: pg.RoleStandby, Streaming: true, ApplyDelay: delay}}
	}
	top := &Topology{Primaries: []string{"pg1"}, Nodes: []*Node{
		{Name: "pg1", Role: RolePrimary, Timeline: 1},
		standby("pg2", 4096, 0),
		standby("pg3", -448, time.Hour),
		standby("pg4", -448, 0),
	}}
	primary, choices, err := top.Candidates()
	if err != nil || primary != "pg1" {
		t.Fatalf("Candidates: %s, %v", primary, err)
	}
	got := map[string]Choice{}
	for _, c := range choices {
		got[c.Node] = c
	}
	if c := got["pg3"]; c.Healthy || !strings.Contains(c.Why, "applies WAL 1h late (recovery_min_apply_delay): never a candidate") {
		t.Errorf("pg3, delayed 1h: %+v; want never a candidate, saying why", c)
	}
	if c := got["pg4"]; !c.Healthy || c.Lag != 0 || !strings.Contains(c.Why, ", 0 bytes behind") {
		t.Errorf("pg4, read past the primary's position: %+v; want healthy, 0 bytes behind", c)
	}
	if choices[0].Node != "pg4" || choices[1].Node != "pg2" || choices[2].Node != "pg3" {
		t.Errorf("order %v; want pg4 (most caught up), pg2, then the delayed pg3", []string{choices[0].Node, choices[1].Node, choices[2].Node})
	}
}
