// Package spec is what a run is made from: the runbook and inventory
// formats, their validation, and the resolved plan.
//
// A runbook is the procedure (variables, steps, rollback, repair and finally
// sections); an inventory is the cluster it acts on. Resolve joins them with
// the operator's variables into a Plan, which the engine (package runbook)
// runs.
package spec

import (
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/kinds"
)

// Runbook is a parsed runbook file, before variables are applied.
type Runbook struct {
	Name        string
	Description string
	File        string // the path it was read from, or "playbook:NAME"
	Digest      string // sha256 of its bytes, to tell whether it changed
	Vars        []VarDecl
	Defaults    rawDefaults
	Steps       []*rawStep
	Rollback    []*SectionDecl
	Repair      []*SectionDecl
	Finally     []*rawStep
}

// VarDecl is a variable as a runbook or inventory declares it. A variable
// declared without a value (`candidate: ~`) must be given by the inventory or
// with --var.
type VarDecl struct {
	Name     string
	Value    string
	HasValue bool
	Pos      Pos
}

// Inventory is a parsed inventory file: the cluster, and variables that
// belong to it (which node is the primary, say).
type Inventory struct {
	File    string
	Digest  string
	Cluster *cluster.Cluster
	Vars    []VarDecl
	order   []string // node names in file order
	// nodeAt is where each node name was first given, the cluster's and
	// green's, so a name given twice is refused where it stands.
	nodeAt map[string]nodeSeen
	// poolersKey is the `pooler:` or `poolers:` key read, so the other
	// one is refused where it stands.
	poolersKey *yaml.Node
}

// NodeOrder returns the node names in the order the inventory lists them.
func (inv *Inventory) NodeOrder() []string { return append([]string(nil), inv.order...) }

// hasNode reports whether a node parameter may name node: a node of the
// cluster or of its green one.
func (inv *Inventory) hasNode(node string) bool {
	_, ok := inv.Cluster.Node(node)
	return ok
}

// nodeList names the nodes a node parameter may name, for messages.
func (inv *Inventory) nodeList() string {
	s := "nodes: " + strings.Join(inv.order, ", ")
	if g := inv.Cluster.Green; g != nil && len(g.Order) > 0 {
		s += "; green: " + strings.Join(g.Order, ", ")
	}
	return s
}

// Section names where a step sits in a plan.
type Section string

// The sections of a plan. Rollback and repair sections are named: the
// section of a step in one is "rollback:NAME" or "repair:NAME".
const (
	SectionSteps   Section = "steps"
	SectionFinally Section = "finally"
)

// RollbackSection is the section value of the rollback section name.
func RollbackSection(name string) Section { return Section("rollback:" + name) }

// RepairSection is the section value of the repair section name.
func RepairSection(name string) Section { return Section("repair:" + name) }

// Defaults are the run-wide settings a step or check can override.
type Defaults struct {
	Timeout      time.Duration // an action's limit
	CheckTimeout time.Duration // one evaluation of one check
	PollInterval time.Duration // between evaluations of a check with within:
	OnFailure    string        // rollback section for steps before the point of no return
}

// DefaultDefaults are used where a runbook says nothing.
var DefaultDefaults = Defaults{
	Timeout:      5 * time.Minute,
	CheckTimeout: 10 * time.Second,
	PollInterval: 500 * time.Millisecond,
}

// Plan is a runbook resolved against an inventory and variables: every
// variable substituted, every check and step built. It is plain data the
// engine runs and the dry run prints.
type Plan struct {
	Runbook   *Runbook
	Inventory *Inventory // nil when the runbook needs none
	Cluster   *cluster.Cluster
	// LockName is what one run at a time is enforced on: the inventory's
	// cluster name, or the runbook's name when there is no inventory.
	LockName string
	Vars     map[string]string
	VarFlags []string // names of the variables given with --var
	// Found names the variables the CLI found in the cluster, not given
	// by the operator (the primary): recorded apart from VarFlags, so that
	// resume runs with the same values and nobody reads them as typed.
	Found           []string
	Defaults        Defaults
	Steps           []*Step
	Rollback        map[string][]*Step
	Repair          map[string][]*Step
	Finally         []*Step
	PointOfNoReturn string // the step after which the engine never rolls back
}

// Step is one resolved step.
type Step struct {
	Name        string
	Description string
	Pos         Pos
	Section     Section
	Requires    []*Cond
	Action      kinds.Step // nil for a step that only checks
	ActionKind  string
	ActionArgs  map[string]any
	Manual      bool // the action is an operator's confirmation
	Destructive bool
	Idempotent  bool
	// PointOfNoReturn marks the step whose completion means the engine will
	// never roll back again.
	PointOfNoReturn bool
	// ApproveWith names later destructive steps whose approval is asked
	// together with this step's, at a terminal: so that no prompt waits on
	// a person while clients are held (between a pooler's pause and
	// resume, say).
	ApproveWith []string
	Timeout     time.Duration
	OnFailure   string // rollback or repair section name; "" stops
	Ensures     []*Cond
}

// Cond is one resolved check, used as a precondition or a postcondition.
type Cond struct {
	Kind    string
	Args    map[string]any
	Check   kinds.Check
	Within  time.Duration // poll until it passes or this long has passed; 0 = once
	Every   time.Duration // between polls
	Timeout time.Duration // one evaluation
	Pos     Pos
}

// AllSteps returns every step of the plan with its section, main steps first.
func (p *Plan) AllSteps() []*Step {
	out := append([]*Step(nil), p.Steps...)
	for _, s := range p.Runbook.Rollback {
		out = append(out, p.Rollback[s.Name]...)
	}
	for _, s := range p.Runbook.Repair {
		out = append(out, p.Repair[s.Name]...)
	}
	return append(out, p.Finally...)
}

// Step returns the step named name in any section, or nil.
func (p *Plan) Step(name string) *Step {
	for _, s := range p.AllSteps() {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// ApprovableSteps names the steps of a runbook that take an approval
// (destructive steps and checklist items under steps:), in order: what
// --approve accepts, for shell completion.
func (rb *Runbook) ApprovableSteps() []string {
	var out []string
	for _, s := range rb.Steps {
		manual := s.Action != nil && s.Action.Kind == "manual"
		if s.Name != "" && ((s.Destructive.Set && s.Destructive.Value) || manual) {
			out = append(out, s.Name)
		}
	}
	return out
}
