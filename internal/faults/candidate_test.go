package faults

// Faults on the candidate before a run: a session holding a lock, the
// server stopped, replay paused so that it cannot catch up.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/playbooks/playbookstest"
	"github.com/switchover/switchover/runbook"
)

// A session on the candidate holding a lock stops the run at preflight:
// exit 3, no action ran, the primary is unchanged.
func TestStreamingSwitchoverStopsOnALockOnTheCandidate(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	primary := sandboxtest.Connect(t, sb, "pg1", "app")
	if _, err := primary.Exec(context.Background(), "CREATE TABLE busy (id int)"); err != nil {
		t.Fatal(err)
	}
	sandboxtest.WaitReplayed(t, sb, "pg2")
	before := sandboxtest.Topology(t, sb)
	tests := []struct {
		name string
		take string
		see  string
	}{
		{"a table lock in an open transaction", "BEGIN; LOCK TABLE busy IN ACCESS SHARE MODE", "in database app AccessShareLock"},
		{"an advisory lock", "SELECT pg_advisory_lock(4242)", "advisory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			holder := sandboxtest.Connect(t, sb, "pg2", "app")
			for _, stmt := range strings.Split(tt.take, "; ") {
				if _, err := holder.Exec(context.Background(), stmt); err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
			}
			ev, err := playbookstest.Run(t, sb, playbook, false)
			if !errors.Is(err, runbook.ErrPrecondition) {
				t.Fatalf("run with %s on the candidate: %v, want a precondition failure (exit 3)\n%s", tt.name, err, ev.Text())
			}
			if got := ev.ActionsRun(); len(got) != 0 {
				t.Fatalf("actions ran: %v, want none", got)
			}
			if !strings.Contains(ev.Text(), tt.see) || !strings.Contains(ev.Text(), "pg.no_blocking_sessions fail") {
				t.Fatalf("the output does not name the blocking session (%q):\n%s", tt.see, ev.Text())
			}
			if got := sandboxtest.Topology(t, sb); got != before {
				t.Fatalf("topology changed: %s, was %s", got, before)
			}
			holder.Close(context.Background())
		})
	}
}

// The candidate stopped: the run stops before any action and names it.
func TestStreamingSwitchoverStopsWhenTheCandidateIsDown(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	stopNode(t, sb, "pg2")
	ev, err := playbookstest.Run(t, sb, playbook, false)
	if !errors.Is(err, runbook.ErrPrecondition) {
		t.Fatalf("run with pg2 stopped: %v, want a precondition failure\n%s", err, ev.Text())
	}
	if got := ev.ActionsRun(); len(got) != 0 {
		t.Fatalf("actions ran: %v, want none", got)
	}
	if !strings.Contains(err.Error()+ev.Text(), "pg2") || !strings.Contains(ev.Text(), "unreachable") {
		t.Fatalf("the failure does not say pg2 is unreachable: %v\n%s", err, ev.Text())
	}
}

func stopNode(t *testing.T, sb *sandbox.Sandbox, name string) {
	t.Helper()
	n := sandboxtest.Node(t, sb, name)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := sandboxtest.Shell(sb).Run(ctx, fmt.Sprintf("%s/pg_ctl stop -D %s -m fast -w", sb.BinDir, n.DataDir))
	if err != nil || out.ExitCode != 0 {
		t.Fatalf("stop %s: %v %s", name, err, out.Combined())
	}
}

// Replay paused on the candidate: it cannot catch up with the stopped
// primary; the step fails at its deadline and the rollback leaves pg1
// serving writes through PgBouncer.
func TestStreamingSwitchoverRollsBackWhenTheCandidateCannotCatchUp(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	pg1 := sandboxtest.Node(t, sb, "pg1")
	cand := sandboxtest.Connect(t, sb, "pg2", "postgres")
	if _, err := cand.Exec(context.Background(), "SELECT pg_wal_replay_pause()"); err != nil {
		t.Fatal(err)
	}
	sandboxtest.WriteThroughPooler(t, sb) // WAL the paused candidate will not replay
	ev, err := playbookstest.Run(t, sb, playbook, false, "catch_up_within=3s")
	if !errors.Is(err, runbook.ErrAction) {
		t.Fatalf("run with replay paused on pg2: %v, want an action failure (exit 4)\n%s", err, ev.Text())
	}
	text := ev.Text()
	for _, want := range []string{"pg.caught_up fail", "section.started", "restart-old-primary done", "resume-pooler-on-old-primary done"} {
		if !strings.Contains(text, want) {
			t.Errorf("events lack %q:\n%s", want, text)
		}
	}
	for _, s := range ev.ActionsRun() {
		if s == "promote" {
			t.Fatalf("promote ran:\n%s", text)
		}
	}
	if got := sandboxtest.WriteThroughPooler(t, sb); got != pg1.Port {
		t.Fatalf("after the rollback the pooler wrote to port %d, want pg1 (%d)", got, pg1.Port)
	}
	if got := sandboxtest.Topology(t, sb); !strings.HasPrefix(got, "pg1=primary/1 pg2=standby") {
		t.Fatalf("after the rollback: %s, want pg1 primary on timeline 1 and pg2 a standby", got)
	}
}
