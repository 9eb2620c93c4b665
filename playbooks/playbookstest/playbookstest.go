// Package playbookstest runs the shipped playbooks, and runbooks given as
// source, in-process against a sandbox cluster, scripted (--yes), and
// reads what they did from their events. The playbooks' own tests and the
// fault suite share it; only tests import it.
package playbookstest

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/playbooks"
	"github.com/switchover/switchover/runbook"
	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"

	// The checks and steps the playbooks name register themselves.
	_ "github.com/switchover/switchover/checks"
	_ "github.com/switchover/switchover/steps"
)

// Streaming is the streaming replication switchover playbook.
const Streaming = "postgres-streaming-switchover"

// Events collects a run's events.
type Events struct {
	mu  sync.Mutex
	all []journal.Event
}

// Observe records an event (journal.Observer).
func (e *Events) Observe(ev journal.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
}

// All returns the events recorded so far, in order.
func (e *Events) All() []journal.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.all)
}

// Text renders the events one a line, with each check's verdict, each
// effect, output and error: what a test searches and prints on failure.
func (e *Events) Text() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var b strings.Builder
	for _, ev := range e.all {
		// Each line opens with its time since the run's first event: a
		// failure on a slow run says where the time went.
		fmt.Fprintf(&b, "%8.1fms %s %s %s %s", float64(ev.Time.Sub(e.all[0].Time).Microseconds())/1000, ev.Type, ev.Step, ev.State, ev.Phase)
		if ev.Check != nil {
			fmt.Fprintf(&b, " [%s %s: %s | %s]", ev.Check.Kind, ev.Check.Status, ev.Check.Observed, ev.Check.Detail)
		}
		if ev.Effect != nil {
			fmt.Fprintf(&b, " {%s: %s}", ev.Effect.Node, ev.Effect.Command)
		}
		if ev.Output != "" {
			fmt.Fprintf(&b, " | %s", ev.Output)
		}
		if ev.Error != "" {
			fmt.Fprintf(&b, " error=%s", ev.Error)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// ActionsRun lists the main steps whose action started. (The finally
// section's pooler resume runs in every case, and is a no-op on a pooler
// that was not paused.)
func (e *Events) ActionsRun() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.all {
		if ev.Type == journal.EventStep && ev.State == journal.StateRunning && ev.Section == spec.SectionSteps {
			out = append(out, ev.Step)
		}
	}
	return out
}

// Facts are the facts a run recorded.
func (e *Events) Facts() map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]string{}
	for _, ev := range e.all {
		if ev.Fact != nil {
			out[ev.Fact.Key] = ev.Fact.Value
		}
	}
	return out
}

// Output is every line the run's actions printed, after its step's name.
func (e *Events) Output() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var b strings.Builder
	for _, ev := range e.all {
		if ev.Type == journal.EventOutput {
			fmt.Fprintf(&b, "%s: %s\n", ev.Step, ev.Output)
		}
	}
	return b.String()
}

// Plan resolves a shipped playbook against the sandbox's inventory.
func Plan(t testing.TB, sb *sandbox.Sandbox, name string, vars ...string) *spec.Plan {
	t.Helper()
	src, ok := playbooks.Read(name)
	if !ok {
		t.Fatalf("no playbook %s", name)
	}
	return PlanFrom(t, sb, "playbook:"+name, src, vars...)
}

// PlanFrom resolves a runbook's source against the sandbox's inventory.
func PlanFrom(t testing.TB, sb *sandbox.Sandbox, label string, src []byte, vars ...string) *spec.Plan {
	t.Helper()
	rb, err := spec.LoadRunbook(label, src)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(sb.Inventory())
	if err != nil {
		t.Fatal(err)
	}
	inv, err := spec.LoadInventory(sb.Inventory(), b)
	if err != nil {
		t.Fatal(err)
	}
	vars = WithPrimary(rb, inv, vars)
	decls, err := spec.ParseVarFlags(vars)
	if err != nil {
		t.Fatal(err)
	}
	p, err := spec.Resolve(rb, inv, decls)
	if err != nil {
		t.Fatalf("resolve %s: %v", label, err)
	}
	return p
}

// WithPrimary adds primary=NODE, the inventory's first node (where a
// sandbox starts the primary), to the variables of a runbook that declares
// a primary when they do not give it: the tests name the primary they
// expect, where `switchover run` would find it in the cluster.
func WithPrimary(rb *spec.Runbook, inv *spec.Inventory, vars []string) []string {
	if !slices.ContainsFunc(rb.Vars, func(d spec.VarDecl) bool { return d.Name == "primary" }) ||
		slices.ContainsFunc(vars, func(v string) bool { return strings.HasPrefix(v, "primary=") }) {
		return vars
	}
	return append(slices.Clip(vars), "primary="+inv.Cluster.NodeOrder()[0])
}

// Run runs a shipped playbook scripted (--yes), or as a dry run, and
// returns its events and error.
func Run(t testing.TB, sb *sandbox.Sandbox, name string, dry bool, vars ...string) (*Events, error) {
	t.Helper()
	ev := &Events{}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, err := runbook.Run(ctx, Plan(t, sb, name, vars...), runbook.Options{
		DryRun: dry, Yes: true, Observer: ev, JournalDir: t.TempDir(),
	})
	return ev, err
}

// hooked is an observer that records every event and calls hook with each
// before the engine goes on: a fault injected there happens at an exact
// point of the run.
type hooked struct {
	*Events
	hook func(journal.Event)
}

func (h hooked) Observe(ev journal.Event) {
	h.Events.Observe(ev)
	if h.hook != nil {
		h.hook(ev)
	}
}

// RunHooked runs a shipped playbook scripted (--yes) with hook called on
// each event before the engine goes on.
func RunHooked(t testing.TB, sb *sandbox.Sandbox, name string, hook func(journal.Event), vars ...string) (*Events, error) {
	t.Helper()
	ev := &Events{}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, err := runbook.Run(ctx, Plan(t, sb, name, vars...), runbook.Options{
		Yes: true, Observer: hooked{ev, hook}, JournalDir: t.TempDir(),
	})
	return ev, err
}

// IsStep reports whether ev is step's move to state in the main steps.
func IsStep(ev journal.Event, step string, state journal.StepState) bool {
	return ev.Type == journal.EventStep && ev.Section == spec.SectionSteps && ev.Step == step && ev.State == state
}

// NoActionBut fails the test when an action outside allowed ran.
func NoActionBut(t testing.TB, ev *Events, allowed ...string) {
	t.Helper()
	for _, s := range ev.ActionsRun() {
		if !slices.Contains(allowed, s) {
			t.Fatalf("action %q ran; only %v may have:\n%s", s, allowed, ev.Text())
		}
	}
}

// WantNothingLost fails unless the run's canary acknowledged commits and
// lost none of them.
func WantNothingLost(t testing.TB, ev *Events) {
	t.Helper()
	f := ev.Facts()
	acked, _ := strconv.Atoi(f["canary.acked"])
	if f["canary.lost"] != "0" || acked == 0 {
		t.Fatalf("canary: %s acknowledged, %q lost; want commits acknowledged and none lost\n%s", f["canary.acked"], f["canary.lost"], ev.Text())
	}
	t.Logf("canary: %d commits acknowledged, none lost; write window %s ms", acked, f["canary.window_ms"])
}
