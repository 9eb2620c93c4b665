package faults

import (
	"context"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/playbooks"
	"github.com/switchover/switchover/playbooks/playbookstest"
	"github.com/switchover/switchover/runbook"
	"github.com/switchover/switchover/runbook/spec"
)

// TestHostReadyRefusesAClosedSSHPort reaches the candidate's host over
// ssh on a port nobody listens on: plan and run --yes stop at preflight
// (exit 3) naming the host and "connection refused", no action runs,
// PgBouncer is never paused and pg1 stays the primary. Before host.ready,
// plan passed and run paused PgBouncer, then failed at pg_ctl stop.
func TestHostReadyRefusesAClosedSSHPort(t *testing.T) {
	sb := sandboxtest.New(t, 1)
	b, err := os.ReadFile(sb.Inventory())
	if err != nil {
		t.Fatal(err)
	}
	// pg2's host: ssh to a closed port, as the database user.
	hostLine := regexp.MustCompile(`(?m)^(  pg2:\n(?:    .*\n)*?    host: ).*$`)
	if !hostLine.Match(b) {
		t.Fatalf("the sandbox inventory has no host line for pg2:\n%s", b)
	}
	text := hostLine.ReplaceAllString(string(b), `${1}{transport: ssh, address: "127.0.0.1:1", user: postgres}`)
	inv, err := spec.LoadInventory("inventory.yaml", []byte(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	src, _ := playbooks.Read(playbook)
	rb, err := spec.LoadRunbook("playbook:"+playbook, src)
	if err != nil {
		t.Fatal(err)
	}
	decls, err := spec.ParseVarFlags(playbookstest.WithPrimary(rb, inv, nil))
	if err != nil {
		t.Fatal(err)
	}
	p, err := spec.Resolve(rb, inv, decls)
	if err != nil {
		t.Fatal(err)
	}
	before := sandboxtest.Topology(t, sb)
	paused := watchAppPause(sb)
	for _, dry := range []bool{true, false} {
		how := map[bool]string{true: "plan", false: "run --yes"}[dry]
		ev := &playbookstest.Events{}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		_, err := runbook.Run(ctx, p, runbook.Options{DryRun: dry, Yes: true, Observer: ev, JournalDir: t.TempDir()})
		cancel()
		if !errors.Is(err, runbook.ErrPrecondition) {
			t.Fatalf("%s: %v, want a precondition failure (exit 3)\n%s", how, err, ev.Text())
		}
		if got := ev.ActionsRun(); len(got) != 0 {
			t.Fatalf("%s: actions ran: %v, want none\n%s", how, got, ev.Text())
		}
		out := ev.Text()
		// host.ready names the host; whether it or another check that
		// reached pg2 first fails the step, the others are cut short.
		for _, want := range []string{"preflight", "host.ready", "pg2 (ssh 127.0.0.1:1 as postgres): connection refused"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: the output lacks %q:\n%s", how, want, out)
			}
		}
	}
	paused.check(t)
	if got := sandboxtest.Topology(t, sb); got != before {
		t.Errorf("topology changed: %s, was %s", got, before)
	}
}
