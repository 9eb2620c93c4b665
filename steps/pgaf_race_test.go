package steps

import (
	"strings"
	"testing"

	"github.com/switchover/switchover/internal/pgaf"
)

// TestPgafRaceSeen: the monitor's race (the old primary sent to
// wait_primary while the candidate is being promoted) is named from the
// view, and nothing else is taken for it.
func TestPgafRaceSeen(t *testing.T) {
	s := &PgafPromotion{Primary: "pg1", Candidate: "pg2"}
	view := func(p1r, p1g, p2r, p2g pgaf.State) *pgaf.View {
		return &pgaf.View{Nodes: []pgaf.Node{
			{ID: 1, Name: "pg1", Reported: p1r, Goal: p1g},
			{ID: 2, Name: "pg2", Reported: p2r, Goal: p2g},
		}}
	}
	for _, c := range []struct {
		name string
		v    *pgaf.View
		want bool
	}{
		{"assigned wait_primary beside prepare_promotion", view(pgaf.StatePrimary, pgaf.StateWaitPrimary, pgaf.StateSecondary, pgaf.StatePreparePromotion), true},
		{"reported wait_primary, assigned demote_timeout, beside stop_replication", view(pgaf.StateWaitPrimary, pgaf.State("demote_timeout"), pgaf.StateStopReplication, pgaf.StateStopReplication), true},
		{"draining as it should", view(pgaf.StatePrimary, pgaf.StateDraining, pgaf.StateSecondary, pgaf.StatePreparePromotion), false},
		{"wait_primary before any promotion", view(pgaf.StateWaitPrimary, pgaf.StateWaitPrimary, pgaf.StateCatchingUp, pgaf.StateCatchingUp), false},
		{"the candidate promoted, the old primary demoted", view(pgaf.StateDemoted, pgaf.StateDemoted, pgaf.StateWaitPrimary, pgaf.StateWaitPrimary), false},
	} {
		got := s.raced(c.v)
		if (got != "") != c.want {
			t.Errorf("%s: raced = %q, want it seen: %v", c.name, got, c.want)
		}
		if got != "" && !strings.Contains(got, "demote timeout") {
			t.Errorf("%s: %q does not say the switchover waits for the demote timeout", c.name, got)
		}
	}
}
