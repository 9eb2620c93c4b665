package playbooks_test

import (
	"fmt"
	"testing"

	"github.com/switchover/switchover/playbooks"
	"github.com/switchover/switchover/runbook/spec"
)

// resolveLogical resolves a logical playbook against testInventory with
// its green section and the given variables.
func resolveLogical(t *testing.T, name string, vars ...string) *spec.Plan {
	t.Helper()
	src, ok := playbooks.Read(name)
	if !ok {
		t.Fatalf("no playbook %s", name)
	}
	rb, err := spec.LoadRunbook("playbook:"+name, src)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := spec.LoadInventory("test-inventory.yaml", []byte(testInventory+greenSection))
	if err != nil {
		t.Fatal(err)
	}
	decls, err := spec.ParseVarFlags(vars)
	if err != nil {
		t.Fatal(err)
	}
	p, err := spec.Resolve(rb, inv, decls)
	if err != nil {
		t.Fatalf("resolve %s: %v", name, err)
	}
	return p
}

// actionArg is the parameter param of the action of step name in p
// (main steps, rollback and finally), as the runbook gave it.
func actionArg(t *testing.T, p *spec.Plan, name, param string) string {
	t.Helper()
	all := append(append([]*spec.Step{}, p.Steps...), p.Finally...)
	for _, sec := range p.Rollback {
		all = append(all, sec...)
	}
	for _, s := range all {
		if s.Name == name {
			v, ok := s.ActionArgs[param]
			if !ok {
				t.Fatalf("step %s of %s has no parameter %s: %v", name, p.Runbook.Name, param, s.ActionArgs)
			}
			return fmt.Sprint(v)
		}
	}
	t.Fatalf("%s has no step %s", p.Runbook.Name, name)
	return ""
}

// TestLogicalPlaybooksAgreeOnNames: the prepare, the cutover both ways and
// the cleanup derive the publications and subscriptions from the node
// names alike, so that the way back finds what the first cutover made and
// the cleanup drops what both made.
func TestLogicalPlaybooksAgreeOnNames(t *testing.T) {
	t.Parallel()
	prep := resolveLogical(t, "logical-prepare", "from=pg1", "to=green1")
	there := resolveLogical(t, "logical-cutover", "from=pg1", "to=green1")
	back := resolveLogical(t, "logical-cutover", "from=green1", "to=pg1")
	clean := resolveLogical(t, "logical-cleanup", "blue=pg1", "green=green1")

	forward, forwardPub := actionArg(t, prep, "subscribe", "subscription"), actionArg(t, prep, "publish", "publication")
	reverse, reversePub := actionArg(t, there, "subscribe-reverse", "subscription"), actionArg(t, there, "publish-reverse", "publication")
	tests := []struct{ what, got, want string }{
		{"the cutover's subscription", actionArg(t, there, "stop-forward", "subscription"), forward},
		{"the cutover's publication", actionArg(t, there, "apply-at-once", "publication"), forwardPub},
		{"the way back's subscription", actionArg(t, back, "stop-forward", "subscription"), reverse},
		{"the way back's reverse subscription", actionArg(t, back, "subscribe-reverse", "subscription"), forward},
		{"the way back's reverse publication", actionArg(t, back, "subscribe-reverse", "publication"), forwardPub},
		{"the way back's publication", actionArg(t, back, "apply-at-once", "publication"), reversePub},
		{"the rollback's subscription", actionArg(t, there, "forward-again", "subscription"), forward},
		{"the rollback's reverse subscription", actionArg(t, there, "drop-reverse", "subscription"), reverse},
		{"the cleanup's subscription on green", actionArg(t, clean, "drop-on-green", "subscription"), forward},
		{"the cleanup's publication on green", actionArg(t, clean, "drop-on-green", "publication"), reversePub},
		{"the cleanup's subscription on blue", actionArg(t, clean, "drop-on-blue", "subscription"), reverse},
		{"the cleanup's publication on blue", actionArg(t, clean, "drop-on-blue", "publication"), forwardPub},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s is %q, want %q", tt.what, tt.got, tt.want)
		}
	}
	if forward == reverse || forwardPub == reversePub {
		t.Errorf("both directions share names: %s/%s, %s/%s", forward, reverse, forwardPub, reversePub)
	}
	// The point of no return is the repoint: everything before it rolls
	// back to from.
	for _, s := range there.Steps {
		if s.PointOfNoReturn && s.Name != "repoint-pooler" {
			t.Errorf("point of no return at %s, want repoint-pooler", s.Name)
		}
	}
}
