package faults

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/playbooks/playbookstest"
	"github.com/switchover/switchover/runbook"
	"github.com/switchover/switchover/runbook/journal"
)

// A query through PgBouncer begun just before the pause, younger than
// max_xact_age, so that every precondition passes: PAUSE waits for it,
// and new clients wait behind the PAUSE. They must not wait for the
// query: a PAUSE waits pause_max_wait (2s) at most, then the clients go
// on at once, the query is named, and PAUSE is tried again once it has
// ended. An independent writer through PgBouncer measures what clients
// felt.
//
// A 6s query: the second PAUSE completes and the switchover is done, 0
// lost, one primary. A 20s query with pause_retry_within 3s: the run
// fails before anything is stopped (exit 4), the query named, pg1 still
// the primary, the clients on it.
func TestPauseBehindAYoungQuery(t *testing.T) {
	sb := sandboxtest.New(t, 1)
	cases := []struct {
		name   string
		query  string
		vars   []string
		wantOK bool
		say    []string
	}{
		{"a 6s query: PAUSE again once it ended", "SELECT pg_sleep(6) AS young_report", nil, true, []string{
			"PAUSE waited 2s for 1 transaction on PRIMARY open since before it: pid ",
			`app "report-job"`, "query: SELECT pg_sleep(6) AS young_report",
			"clients went on at once", "(attempt 2 of 3)", "the transactions PAUSE waited for ended ",
		}},
		{"a 20s query: refused with clients on the old primary", "SELECT pg_sleep(20) AS long_report", []string{"pause_retry_within=3s"}, false, []string{
			"PAUSE waited 2s for 1 transaction on PRIMARY open since before it",
			"still open after 3s: 1 transaction on PRIMARY open since before it: pid ",
			"query: SELECT pg_sleep(20) AS long_report", "clients are on the old primary, nothing stopped",
		}},
	}
	primary := "pg1"
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			started := make(chan error, 1)
			finished := make(chan error, 1)
			hooked := false
			hook := func(ev journal.Event) {
				if hooked || !playbookstest.IsStep(ev, "pause-pooler", journal.StateChecking) {
					return
				}
				hooked = true
				c := pooled(t, sb)
				go func() {
					_, err := c.Exec(context.Background(), tc.query)
					finished <- err
				}()
				// Running on the primary before the checks look.
				var err error
				deadline := time.Now().Add(10 * time.Second)
				for time.Now().Before(deadline) {
					var got string
					got, err = queryOn(t, sb, primary, fmt.Sprintf("SELECT count(*)::text FROM pg_stat_activity WHERE query = '%s' AND state = 'active'", tc.query))
					if err == nil && got == "1" {
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
				started <- err
			}
			w := sandboxtest.WatchStalls(t, sb)
			roles := sandboxtest.StartSampler(sb)
			ev, err := playbookstest.RunHooked(t, sb, playbook, hook, append([]string{"primary=" + primary, "candidate=" + other(primary)}, tc.vars...)...)
			roles.Finish().CheckKeptOnPrimary(t, sb)
			w.Check(t, 5*time.Second)
			if !hooked {
				t.Fatalf("the run never reached pause-pooler: %v\n%s", err, ev.Text())
			}
			if serr := <-started; serr != nil {
				t.Fatalf("the query did not start: %v", serr)
			}
			if !tc.wantOK {
				// Refused: the query need not run to its end.
				if _, err := queryOn(t, sb, primary, fmt.Sprintf("SELECT count(pg_cancel_backend(pid))::text FROM pg_stat_activity WHERE query = '%s'", tc.query)); err != nil {
					t.Errorf("cancel the query: %v", err)
				}
			}
			select {
			case qerr := <-finished:
				if qerr != nil && tc.wantOK {
					t.Errorf("the query through PgBouncer: %v", qerr)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("the query through PgBouncer never ended")
			}
			text := ev.Text()
			for _, want := range tc.say {
				if want = strings.ReplaceAll(want, "PRIMARY", primary); !strings.Contains(text, want) {
					t.Errorf("the run does not say %q:\n%s", want, text)
				}
			}
			if tc.wantOK {
				if err != nil {
					t.Fatalf("switchover behind a 6s query: %v\n%s", err, text)
				}
				playbookstest.WantNothingLost(t, ev)
				primary = other(primary)
				sandboxtest.WantOnePrimary(t, sb, primary)
			} else {
				if err == nil || errors.Is(err, runbook.ErrPrecondition) {
					t.Fatalf("switchover behind a 20s query with pause_retry_within 3s: %v, want a failed step (exit 4)\n%s", err, text)
				}
				sandboxtest.WantOnePrimary(t, sb, primary)
				if got := sandboxtest.WriteThroughPooler(t, sb); got != sandboxtest.Node(t, sb, primary).Port {
					t.Errorf("after the refused run the pooler wrote to port %d, want %s", got, primary)
				}
			}
		})
	}
}

// other is the other node of a two-node sandbox.
func other(name string) string {
	if name == "pg1" {
		return "pg2"
	}
	return "pg1"
}
