package faults

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/playbooks/playbookstest"
	"github.com/switchover/switchover/runbook"
	"github.com/switchover/switchover/runbook/journal"
)

// rejectReplication makes a node's pg_hba.conf refuse replication
// connections over TCP (its own streaming from its upstream is an
// outgoing connection, so nothing shows it), and returns the undo.
func rejectReplication(t *testing.T, sb *sandbox.Sandbox, name string) func() {
	t.Helper()
	hba := filepath.Join(sandboxtest.Node(t, sb, name).DataDir, "pg_hba.conf")
	before, err := os.ReadFile(hba)
	if err != nil {
		t.Fatal(err)
	}
	write := func(b []byte) error {
		if err := os.WriteFile(hba, b, 0o600); err != nil {
			return err
		}
		_, err := queryOn(t, sb, name, "SELECT pg_reload_conf()::text")
		return err
	}
	if err := write(append([]byte("host replication all 127.0.0.1/32 reject\n"), before...)); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := write(before); err != nil {
			t.Errorf("put %s's pg_hba.conf back: %v", name, err)
		}
	}
}

// A candidate whose pg_hba.conf rejects replication connections streams
// from the primary with no sign of it; promoted, it would be left with no
// standby. plan and run refuse it at preflight (exit 3), naming the
// node that could not connect, from its own host, and PostgreSQL's
// refusal; nothing changed.
//
// Refusing them only once the run is past its preflight (pg_hba.conf
// changed while clients are held, before the stop): the old primary's
// rejoin waits follow_within (3s here), not the step's limit, and its
// failure says what a replication connection from its host answers. The switchover itself is kept: 0
// lost, one primary, never two acknowledging commits at once.
func TestCandidateThatRefusesReplication(t *testing.T) {
	sb := sandboxtest.New(t, 1)
	undo := rejectReplication(t, sb, "pg2")
	for _, dry := range []bool{true, false} {
		ev, err := playbookstest.Run(t, sb, playbook, dry)
		if !errors.Is(err, runbook.ErrPrecondition) {
			t.Fatalf("dry run %v with pg2 rejecting replication: %v, want a precondition failure (exit 3)\n%s", dry, err, ev.Text())
		}
		text := ev.Text()
		for _, want := range []string{"pg.replication_reachable fail", "pg1 (local", "cannot open a replication connection to pg2",
			"pg_hba.conf rejects replication connection", "promoted, pg2 would be left without those standbys"} {
			if !strings.Contains(text, want) {
				t.Errorf("dry run %v does not say %q:\n%s", dry, want, text)
			}
		}
	}
	sandboxtest.WantOnePrimary(t, sb, "pg1")
	undo()

	var hookErr error
	hooked := false
	hook := func(ev journal.Event) {
		if hooked || !playbookstest.IsStep(ev, "drain-router", journal.StateRunning) {
			return
		}
		hooked = true
		defer func() {
			if r := recover(); r != nil {
				hookErr = errors.New("pg_hba.conf not changed")
			}
		}()
		rejectReplication(t, sb, "pg2")
	}
	w := sandboxtest.WatchStalls(t, sb)
	roles := sandboxtest.StartSampler(sb)
	start := time.Now()
	ev, err := playbookstest.RunHooked(t, sb, playbook, hook, "follow_within=3s")
	took := time.Since(start)
	roles.Finish().CheckKeptOnPrimary(t, sb)
	w.Check(t, 5*time.Second)
	if !hooked || hookErr != nil {
		t.Fatalf("pg2's pg_hba.conf was not changed during the run: %v", hookErr)
	}
	if err == nil || errors.Is(err, runbook.ErrPrecondition) {
		t.Fatalf("run with pg2 refusing replication after the preflight: %v, want a failed step (exit 4)\n%s", err, ev.Text())
	}
	text := ev.Text()
	for _, want := range []string{"pg1 is configured to stream from pg2 and runs, but", "a replication connection from pg1's host to pg2, as its primary_conninfo makes it, fails",
		"pg_hba.conf rejects replication connection"} {
		if !strings.Contains(text, want) {
			t.Errorf("the run does not say %q:\n%s", want, text)
		}
	}
	if took > 90*time.Second {
		t.Errorf("the run took %s: the rejoin's wait did not follow follow_within=3s", took.Round(time.Second))
	}
	playbookstest.WantNothingLost(t, ev)
	sandboxtest.WantOnePrimary(t, sb, "pg2")
}
