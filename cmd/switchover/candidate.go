package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/manifoldco/promptui"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/runbook"
)

// standbyChoice is a standby that could become the primary.
type standbyChoice struct {
	Node     string
	Lag      int64
	Timeline int
	Healthy  bool   // streams from the primary, no session would block it
	Why      string // what makes it unhealthy, or how healthy it is
}

// standbyChoices inspects the cluster and rates every standby as a
// candidate: healthy ones first, the most caught-up first.
func standbyChoices(ctx context.Context, inv *runbook.Inventory) (primary string, out []standbyChoice, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st := inspectCluster(ctx, inv)
	if len(st.Primaries) != 1 {
		return "", nil, fmt.Errorf("cannot choose a candidate: %d nodes answer as a primary (%v); `switchover status -i %s` shows the cluster", len(st.Primaries), st.Primaries, inv.File)
	}
	primary = st.Primaries[0]
	for _, ns := range st.Nodes {
		if ns.Node == primary {
			continue
		}
		c := standbyChoice{Node: ns.Node, Timeline: ns.Timeline}
		if ns.LagBytes != nil {
			c.Lag = *ns.LagBytes
		}
		switch {
		case ns.Error != "":
			c.Why = "does not answer: " + ns.Error
		case ns.Role != string(pg.RoleStandby):
			c.Why = "is not a standby"
		case !ns.Streaming:
			c.Why = "does not stream"
		case ns.UpstreamNode != primary:
			c.Why = fmt.Sprintf("streams from %s, not from %s", ns.Upstream, primary)
		case ns.Blocking > 0:
			c.Why = fmt.Sprintf("%d session(s) would block it", ns.Blocking)
		default:
			c.Healthy = true
			c.Why = fmt.Sprintf("streams from %s, %d bytes behind, timeline %d, no blocking session", primary, c.Lag, c.Timeline)
		}
		out = append(out, c)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Healthy != out[j].Healthy {
			return out[i].Healthy
		}
		return out[i].Lag < out[j].Lag
	})
	return primary, out, nil
}

// chooseCandidate settles --candidate: a node name is taken as given;
// "auto" picks the most caught-up healthy standby and says why.
func chooseCandidate(ctx context.Context, io *streams, inv *runbook.Inventory, flag string) (string, error) {
	if flag != "auto" {
		if inv != nil && inv.Cluster.Nodes[flag] == nil {
			return "", usagef("--candidate %s: no such node in inventory %s", flag, inv.File)
		}
		return flag, nil
	}
	if inv == nil {
		return "", usagef("--candidate auto needs the cluster: -i INVENTORY")
	}
	primary, choices, err := standbyChoices(ctx, inv)
	if err != nil {
		return "", usagef("--candidate auto: %v", err)
	}
	if len(choices) == 0 || !choices[0].Healthy {
		msg := "--candidate auto: no healthy standby"
		for _, c := range choices {
			msg += fmt.Sprintf("; %s %s", c.Node, c.Why)
		}
		return "", fmt.Errorf("%w: %s", runbook.ErrPrecondition, msg)
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
	return best.Node, nil
}

// pickCandidate asks the operator at a terminal to choose among the
// standbys, healthy ones first, each with its lag and timeline.
func pickCandidate(ctx context.Context, io *streams, inv *runbook.Inventory) (string, error) {
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
	s := promptui.Select{Label: "which standby becomes the primary?", Items: items, Stdin: op.in, Stdout: op.out, Size: 10}
	i, _, err := s.Run()
	if err != nil {
		return "", fmt.Errorf("%w: %v", runbook.ErrDeclined, promptErr(err))
	}
	if !choices[i].Healthy {
		return "", fmt.Errorf("%w: %s cannot be the candidate: %s", runbook.ErrPrecondition, names[i], choices[i].Why)
	}
	return names[i], nil
}

// settleCandidate turns --candidate into the variable candidate; without
// it, at a terminal, when the runbook leaves the candidate open, the
// operator picks one. A scripted run with the candidate open fails in
// validation, which names the variable and the flag.
func settleCandidate(ctx context.Context, io *streams, opts *runOpts) error {
	var inv *runbook.Inventory
	if opts.inventory != "" {
		b, err := os.ReadFile(opts.inventory)
		if err != nil {
			return usagef("inventory %s: %v", opts.inventory, err)
		}
		if inv, err = runbook.LoadInventory(opts.inventory, b); err != nil {
			return nil // loadPlan reports the inventory's problems with the runbook's
		}
	}
	if opts.candidate != "" {
		for _, v := range opts.vars {
			if strings.HasPrefix(v, "candidate=") {
				return usagef("--candidate and --var candidate=... both given; keep one")
			}
		}
		name, err := chooseCandidate(ctx, io, inv, opts.candidate)
		if err != nil {
			return err
		}
		opts.vars = append(opts.vars, "candidate="+name)
		return nil
	}
	if !io.interactive || inv == nil || !candidateOpen(opts.planInput, inv) {
		return nil
	}
	name, err := pickCandidate(ctx, io, inv)
	if err != nil {
		return err
	}
	fmt.Fprintf(io.err, "candidate: %s (chosen at the prompt)\n", name)
	opts.vars = append(opts.vars, "candidate="+name)
	return nil
}

// candidateOpen reports whether the runbook declares a candidate variable
// without a value that neither the inventory nor --var gives.
func candidateOpen(in planInput, inv *runbook.Inventory) bool {
	label, src, err := readRunbook(in.file)
	if err != nil {
		return false
	}
	rb, err := runbook.LoadRunbook(label, src)
	if err != nil {
		return false
	}
	open := false
	for _, d := range rb.Vars {
		if d.Name == "candidate" && !d.HasValue {
			open = true
		}
	}
	for _, d := range inv.Vars {
		if d.Name == "candidate" && d.HasValue {
			return false
		}
	}
	for _, v := range in.vars {
		if strings.HasPrefix(v, "candidate=") {
			return false
		}
	}
	return open
}
