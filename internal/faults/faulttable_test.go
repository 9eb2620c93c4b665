package faults

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/playbooks/playbookstest"
	"github.com/switchover/switchover/runbook"
	"github.com/switchover/switchover/runbook/journal"
)

// faultRow is one fault of the suite's table.
type faultRow struct{ fault, outcome, exit, lost, roles string }

var (
	faultMu   sync.Mutex
	faultRows []faultRow
)

// recordFault adds a fault's row once its test has passed its assertions.
func recordFault(t *testing.T, fault string, ev *playbookstest.Events, err error, sb *sandbox.Sandbox) {
	t.Helper()
	exit, outcome := "0", "done"
	switch {
	case errors.Is(err, runbook.ErrPrecondition):
		exit, outcome = "3", "stopped at a precondition, nothing changed"
	case errors.Is(err, runbook.ErrAction):
		exit, outcome = "4", "failed; "+recovery(ev)
	case err != nil:
		exit, outcome = "?", err.Error()
	}
	lost := "- (no writes started)"
	for _, e := range ev.All() {
		if e.Fact != nil && e.Fact.Key == "canary.lost" {
			lost = e.Fact.Value
		}
	}
	faultMu.Lock()
	defer faultMu.Unlock()
	faultRows = append(faultRows, faultRow{fault, outcome, exit, lost, roles(sb)})
}

// roles says what each node is, by name: "pg1 primary; pg2, pg3 streaming
// from pg1"; a standby not streaming (yet) is named as such.
func roles(sb *sandbox.Sandbox) string {
	byPort := map[string]string{}
	for _, n := range sb.Nodes {
		byPort[fmt.Sprint(n.Port)] = n.Name
	}
	var primaries, notStreaming, down []string
	from := map[string][]string{}
	for _, s := range sb.Status(context.Background()) {
		switch {
		case s.Err != nil:
			down = append(down, s.Node.Name)
		case s.State.Role == pg.RolePrimary:
			primaries = append(primaries, s.Node.Name)
		case !s.State.Streaming:
			notStreaming = append(notStreaming, s.Node.Name)
		default:
			up := byPort[s.State.Upstream[strings.LastIndex(s.State.Upstream, ":")+1:]]
			from[up] = append(from[up], s.Node.Name)
		}
	}
	parts := []string{strings.Join(primaries, ", ") + " primary"}
	for up, list := range from {
		parts = append(parts, strings.Join(list, ", ")+" streaming from "+up)
	}
	if len(notStreaming) > 0 {
		parts = append(parts, strings.Join(notStreaming, ", ")+" standby, not streaming")
	}
	if len(down) > 0 {
		parts = append(parts, strings.Join(down, ", ")+" down")
	}
	return strings.Join(parts, "; ")
}

// recovery says what ran after a failure, from the events.
func recovery(ev *playbookstest.Events) string {
	for _, e := range ev.All() {
		if e.Type == journal.EventSection && strings.HasPrefix(string(e.Section), "rollback:") {
			return "rolled back, old primary serving"
		}
	}
	return "no rollback needed"
}

// printFaultTable prints the faults' table, and appends its rows to
// $FAULTS_TABLE when set.
func printFaultTable() {
	faultMu.Lock()
	defer faultMu.Unlock()
	if len(faultRows) == 0 {
		return
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "\nFAULT\tOUTCOME\tEXIT\tLOST\tROLES AFTER")
	for _, r := range faultRows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.fault, r.outcome, r.exit, r.lost, r.roles)
	}
	w.Flush()
	if path := os.Getenv("FAULTS_TABLE"); path != "" {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			w := tabwriter.NewWriter(f, 0, 0, 2, ' ', 0)
			for _, r := range faultRows {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.fault, r.outcome, r.exit, r.lost, r.roles)
			}
			w.Flush()
			f.Close()
		}
	}
}
