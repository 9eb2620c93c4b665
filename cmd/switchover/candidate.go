package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/manifoldco/promptui"

	"github.com/switchover/switchover/internal/topology"
	"github.com/switchover/switchover/runbook"
	"github.com/switchover/switchover/runbook/spec"
)

// candidate is the standby a run promotes, settled from --candidate or
// at the prompt; it becomes the runbook variable candidate.
type candidate struct {
	Node string
	How  string // "--candidate", "auto" or "prompt"
}

// standbyChoices inspects the cluster and rates every standby as a
// candidate: healthy ones first, the most caught-up first.
func standbyChoices(ctx context.Context, inv *spec.Inventory) (primary string, out []topology.Choice, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	primary, out, err = topology.Inspect(ctx, inv.Cluster, topology.Options{NodesOnly: true}).Candidates()
	if err != nil {
		return "", nil, fmt.Errorf("cannot choose a candidate: %v; `switchover status -i %s` shows the cluster", err, inv.File)
	}
	return primary, out, nil
}

// chooseCandidate settles --candidate: a node name is taken as given;
// "auto" picks the most caught-up healthy standby and says why.
func chooseCandidate(ctx context.Context, io *streams, inv *spec.Inventory, flag string) (*candidate, error) {
	if flag != "auto" {
		if inv != nil {
			if _, ok := inv.Cluster.Node(flag); !ok { // a node of the cluster or of its green one
				return nil, usagef("--candidate %s: no such node in inventory %s", flag, inv.File)
			}
		}
		return &candidate{Node: flag, How: "--candidate"}, nil
	}
	if inv == nil {
		return nil, usagef("--candidate auto needs the cluster: -i INVENTORY")
	}
	primary, choices, err := standbyChoices(ctx, inv)
	if err != nil {
		// The cluster's state, not the command line (exit 3).
		return nil, fmt.Errorf("%w: --candidate auto: %v", runbook.ErrPrecondition, err)
	}
	if len(choices) == 0 || !choices[0].Healthy {
		msg := "--candidate auto: no healthy standby"
		for _, c := range choices {
			msg += fmt.Sprintf("; %s %s", c.Node, c.Why)
		}
		return nil, fmt.Errorf("%w: %s", runbook.ErrPrecondition, msg)
	}
	best := choices[0]
	fmt.Fprintf(io.err, "candidate: %s (auto): the most caught-up healthy standby of %s: %s\n", best.Node, primary, best.Why)
	for _, c := range choices[1:] {
		if c.Healthy {
			fmt.Fprintf(io.err, "  also healthy: %s, %d bytes behind\n", c.Node, c.Lag)
			continue
		}
		fmt.Fprintf(io.err, "  not %s: it %s\n", c.Node, c.Why)
	}
	return &candidate{Node: best.Node, How: "auto"}, nil
}

// pickCandidate asks the operator at a terminal to choose among the
// standbys, healthy ones first, each with its lag and timeline.
func pickCandidate(ctx context.Context, io *streams, inv *spec.Inventory) (string, error) {
	_, choices, err := standbyChoices(ctx, inv)
	if err != nil {
		return "", usagef("%v", err)
	}
	var items []string
	var names []string
	for _, c := range choices {
		mark := "  "
		if !c.Healthy {
			mark = "✗ "
		}
		items = append(items, fmt.Sprintf("%s%-8s %s", mark, c.Node, c.Why))
		names = append(names, c.Node)
	}
	if len(items) == 0 {
		return "", fmt.Errorf("%w: no standby to choose from", runbook.ErrPrecondition)
	}
	op := newPromptOperator(io)
	s := promptui.Select{Label: "which standby becomes the primary?", Items: items, Stdin: op.in, Stdout: op.out, Size: 10, Templates: op.selectTemplates()}
	i, _, err := s.Run()
	if err != nil {
		return "", fmt.Errorf("%w: %v", runbook.ErrDeclined, promptErr(err))
	}
	if !choices[i].Healthy {
		return "", fmt.Errorf("%w: %s cannot be the candidate: %s", runbook.ErrPrecondition, names[i], choices[i].Why)
	}
	return names[i], nil
}

// settleCandidate settles the candidate from --candidate; without it, at
// a terminal, when the runbook leaves the candidate open, the operator
// picks one. A scripted run with the candidate open fails in validation,
// which names the variable and the flag. It returns nil when there is
// nothing to settle, or when the inventory did not load (the plan reports
// its problems with the runbook's).
func settleCandidate(ctx context.Context, io *streams, opts *runOpts, l *loaded) (*candidate, error) {
	inv := l.inv
	if opts.inventory != "" && inv == nil {
		return nil, nil
	}
	if opts.candidate != "" {
		for _, v := range opts.vars {
			if strings.HasPrefix(v, "candidate=") {
				return nil, usagef("--candidate and --var candidate=... both given; keep one")
			}
		}
		return chooseCandidate(ctx, io, inv, opts.candidate)
	}
	if !io.interactive || inv == nil || !l.candidateOpen() {
		return nil, nil
	}
	name, err := pickCandidate(ctx, io, inv)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(io.err, "candidate: %s (chosen at the prompt)\n", name)
	return &candidate{Node: name, How: "prompt"}, nil
}

// candidateOpen reports whether the runbook declares a candidate variable
// without a value that neither the inventory nor --var gives.
func (l *loaded) candidateOpen() bool {
	if l.rb == nil {
		return false
	}
	open := false
	for _, d := range l.rb.Vars {
		if d.Name == "candidate" && !d.HasValue {
			open = true
		}
	}
	for _, d := range l.inv.Vars {
		if d.Name == "candidate" && d.HasValue {
			return false
		}
	}
	for _, d := range l.vars {
		if d.Name == "candidate" {
			return false
		}
	}
	return open
}
