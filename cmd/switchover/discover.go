package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/claim"
	"github.com/switchover/switchover/internal/topology"
	"github.com/switchover/switchover/runbook"
	"github.com/switchover/switchover/runbook/spec"
)

// primaryVar is the variable the shipped playbooks call the node that is
// the primary when the run starts.
const primaryVar = "primary"

// foundInCluster is where a primary found in the cluster comes from, as
// its declaration's position says (and the journal keeps it with the
// run's variables, so resume continues with the same node).
const foundInCluster = "the cluster"

// discoverTimeout bounds asking the nodes who the primary is.
const discoverTimeout = 10 * time.Second

// declaresPrimary reports whether the runbook declares a primary variable:
// only such a runbook has its primary found in the cluster. (A recovery
// runbook that uses ${primary} without declaring it means a node the
// operator names, such as an old primary to rejoin.)
func (l *loaded) declaresPrimary() bool {
	if l.rb == nil {
		return false
	}
	for _, d := range l.rb.Vars {
		if d.Name == primaryVar {
			return true
		}
	}
	return false
}

// givenVar returns the last declaration of name with a value, from the
// runbook, the inventory and --var, in that order.
func (l *loaded) givenVar(name string) (spec.VarDecl, bool) {
	var got spec.VarDecl
	ok := false
	layers := [][]spec.VarDecl{l.vars}
	if l.inv != nil {
		layers = append([][]spec.VarDecl{l.inv.Vars}, layers...)
	}
	if l.rb != nil {
		layers = append([][]spec.VarDecl{l.rb.Vars}, layers...)
	}
	for _, decls := range layers {
		for _, d := range decls {
			if d.Name == name && d.HasValue {
				got, ok = d, true
			}
		}
	}
	return got, ok
}

// settlePrimary finds the primary in the cluster, for a run or a plan of a
// runbook that declares a primary variable. Left out of the inventory and
// --var, the primary is the node the cluster says it is; given, it must be
// that node, or the run is refused before anything runs or is held, saying
// first which node is the primary now. A cluster that does not say (no
// primary answers, two do, the standbys lead elsewhere) refuses a run
// that leaves the primary out; one that names it leaves the verdict to the
// runbook's checks, as a recovery runbook in such a cluster needs.
func settlePrimary(ctx context.Context, io *streams, l *loaded) error {
	if l.inv == nil || len(l.problems) > 0 || !l.declaresPrimary() {
		return nil
	}
	given, isGiven := l.givenVar(primaryVar)
	ictx, cancel := context.WithTimeout(ctx, discoverTimeout)
	defer cancel()
	found, err := topology.Inspect(ictx, l.inv.Cluster, topology.Options{NodesOnly: true, StateOnly: true}).Primary()
	var pe *topology.PrimaryError
	switch {
	case err != nil && !errors.As(err, &pe):
		return err
	case err != nil && isGiven:
		return nil
	case err != nil:
		r := refusef("cannot tell the primary of cluster %s: %v; nothing was done; `switchover status -i %s` shows the cluster, and --var %s=NODE names the primary",
			l.inv.Cluster.Name, err, l.inv.File, primaryVar)
		if pe.Health != topology.TwoPrimaries {
			// What another run's switchover shows for a moment.
			r.(*refusal).passing = true
		}
		return r
	case isGiven && given.Value != found:
		return refusef("%s is the primary now, not %s (%s: %s=%s); nothing was done; leave %s out and the primary is found in the cluster",
			found, given.Value, given.Pos, primaryVar, given.Value, primaryVar)
	case isGiven:
		return nil
	}
	l.primary = &spec.VarDecl{Name: primaryVar, Value: found, HasValue: true, Pos: spec.Pos{File: foundInCluster}}
	fmt.Fprintf(io.err, "primary: %s (found in the cluster)\n", found)
	return nil
}

// primaryStandIn is what validation takes for a primary to be found in the
// cluster: a node of the inventory other than the candidate, so that the
// runbook's checks and steps are validated with a node they accept. It is
// never run with.
func (l *loaded) primaryStandIn() *spec.VarDecl {
	if l.inv == nil || !l.declaresPrimary() {
		return nil
	}
	if _, ok := l.givenVar(primaryVar); ok {
		return nil
	}
	cand, _ := l.givenVar("candidate")
	for _, name := range l.inv.Cluster.NodeOrder() {
		if name != cand.Value {
			return &spec.VarDecl{Name: primaryVar, Value: name, HasValue: true, Pos: spec.Pos{File: foundInCluster}}
		}
	}
	return nil
}

// refusal is a precondition that failed before the run started (exit 3),
// worded to say what is wrong first. passing marks a state another run's
// switchover passes through (no primary for a moment), see heldInstead.
type refusal struct {
	msg     string
	passing bool
}

func (r *refusal) Error() string { return r.msg }
func (r *refusal) Unwrap() error { return runbook.ErrPrecondition }

func refusef(format string, args ...any) error {
	return &refusal{msg: fmt.Sprintf(format, args...)}
}

// refuseCandidateIsPrimary refuses a switchover to the node that is the
// primary already, found in the cluster: most often a switchover that
// stopped after its promotion. It says so, and who still claims the
// cluster, instead of every check and step that cannot take a primary
// for the candidate.
func refuseCandidateIsPrimary(ctx context.Context, l *loaded, cand *candidate) error {
	if l.inv == nil || l.primary == nil {
		return nil
	}
	name := ""
	if cand != nil {
		name = cand.Node
	} else if v, ok := l.givenVar("candidate"); ok {
		name = v.Value
	}
	if name == "" || name != l.primary.Value {
		return nil
	}
	var others []string
	for _, n := range l.inv.Cluster.NodeOrder() {
		if n != name {
			others = append(others, n)
		}
	}
	msg := fmt.Sprintf("%s is already the primary of cluster %s (the one node out of recovery): there is nothing to switch over to it; the other nodes are %s (--candidate auto picks the most caught-up standby); nothing was done", name, l.inv.Cluster.Name, strings.Join(others, ", "))
	cctx, cancel := context.WithTimeout(ctx, discoverTimeout)
	defer cancel()
	var held *claim.HeldError
	if err := (&claim.Store{Cluster: l.inv.Cluster}).Check(cctx, ""); errors.As(err, &held) {
		msg += fmt.Sprintf(". The cluster is claimed by %s (seen on %s): a switchover that stopped after its promotion. Finish it with `switchover resume %s` where its journal is; without that journal, from any machine: `switchover run rejoin-old-primary -i %s --var old=OLD_PRIMARY --var new=%s --take-over` (docs/runs.md: finishing another operator's run)",
			held.Holder, held.Node, held.Holder.RunID, l.inv.File, name)
	}
	return refusef("%s", msg)
}

// heldInstead returns, for err (the cluster showed no primary, or no
// healthy standby), the error that another run holds the cluster when one
// does: in the middle of that run's switchover the cluster shows no
// primary for a moment, and that run is the answer (exit 6), not the
// cluster's state. Two primaries are never that: they stay the answer.
// With --take-over, or when no run holds it, err.
func heldInstead(ctx context.Context, l *loaded, takeOver bool, err error) error {
	var r *refusal
	if takeOver || l.inv == nil || !errors.Is(err, runbook.ErrPrecondition) || (errors.As(err, &r) && !r.passing) {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, discoverTimeout)
	defer cancel()
	var held *claim.HeldError
	if cerr := (&claim.Store{Cluster: l.inv.Cluster}).Check(cctx, ""); errors.As(cerr, &held) {
		return &runbook.LockedError{Cluster: l.inv.Cluster.Name, Holder: held.Holder, SeenOn: held.Node}
	}
	return err
}
