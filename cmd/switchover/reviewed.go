package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/secret"
	"github.com/switchover/switchover/internal/topology"
	"github.com/switchover/switchover/runbook"
	"github.com/switchover/switchover/runbook/spec"
)

// reviewedPlan is what `plan --out` saves for a change board to review and
// `run --plan` runs: the runbook and inventory by digest, the variables,
// and the cluster's topology as the dry run saw it. Field names are stable.
type reviewedPlan struct {
	Version         int               `json:"version"`
	Created         time.Time         `json:"created"`
	CreatedBy       string            `json:"created_by"`
	DryRunID        string            `json:"dry_run_id"`
	Runbook         string            `json:"runbook"`
	RunbookName     string            `json:"runbook_name"`
	RunbookDigest   string            `json:"runbook_digest"`
	Inventory       string            `json:"inventory,omitempty"`
	InventoryDigest string            `json:"inventory_digest,omitempty"`
	Vars            map[string]string `json:"vars"`      // every resolved variable, secrets masked
	VarFlags        []string          `json:"var_flags"` // NAME=VALUE as given on the command line, secrets masked
	PointOfNoReturn string            `json:"point_of_no_return,omitempty"`
	Steps           []string          `json:"steps"`
	Topology        []topologyNode    `json:"topology,omitempty"`
}

// topologyNode is one node as the plan saw it.
type topologyNode struct {
	Node     string `json:"node"`
	Role     string `json:"role"`
	Timeline int    `json:"timeline,omitempty"`
	Upstream string `json:"upstream,omitempty"` // the node it streams from
	Major    int    `json:"major_version,omitempty"`
}

// snapshot is the cluster's topology as a reviewed plan keeps it.
func snapshot(ctx context.Context, inv *spec.Inventory) []topologyNode {
	if inv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var out []topologyNode
	for _, n := range topology.Inspect(ctx, inv.Cluster, topology.Options{NodesOnly: true}).Nodes {
		tn := topologyNode{Node: n.Name, Role: string(n.Role), Timeline: n.Timeline, Upstream: n.UpstreamNode, Major: n.Major}
		if !n.Reachable() {
			tn.Role = "unreachable"
		}
		out = append(out, tn)
	}
	return out
}

// saveReviewedPlan writes what a later `run --plan` needs.
func saveReviewedPlan(ctx context.Context, path string, p *spec.Plan, flags []string, res *runbook.Result) error {
	red := &secret.Redactor{}
	rp := reviewedPlan{Version: 1, Created: time.Now().UTC(), Runbook: p.Runbook.File, RunbookName: p.Runbook.Name,
		RunbookDigest: p.Runbook.Digest, Vars: map[string]string{}, VarFlags: []string{}, PointOfNoReturn: p.PointOfNoReturn}
	id := runbook.CurrentIdentity()
	rp.CreatedBy = id.User + "@" + id.Host
	if res != nil {
		rp.DryRunID = res.RunID
	}
	if p.Inventory != nil {
		rp.Inventory, rp.InventoryDigest = p.Inventory.File, p.Inventory.Digest
	}
	for k, v := range p.Vars {
		if secret.LooksSecret(k) {
			v = secret.Mask
		}
		rp.Vars[k] = red.Redact(v)
	}
	for _, f := range flags {
		k, v, _ := strings.Cut(f, "=")
		if secret.LooksSecret(k) {
			v = secret.Mask
		}
		rp.VarFlags = append(rp.VarFlags, k+"="+red.Redact(v))
	}
	for _, s := range p.Steps {
		rp.Steps = append(rp.Steps, s.Name)
	}
	rp.Topology = snapshot(ctx, p.Inventory)
	b, err := json.MarshalIndent(rp, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return usagef("--out %s: %v", path, err)
	}
	return nil
}

// loadReviewedPlan reads a saved plan and rebuilds the run's input from it.
func loadReviewedPlan(path string, given []string) (*reviewedPlan, planInput, error) {
	var rp reviewedPlan
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, planInput{}, usagef("--plan %s: %v", path, err)
	}
	if err := json.Unmarshal(b, &rp); err != nil || rp.Version != 1 || rp.RunbookDigest == "" {
		return nil, planInput{}, usagef("--plan %s: not a plan saved by `switchover plan --out`", path)
	}
	extra := map[string]string{}
	for _, g := range given {
		k, v, _ := strings.Cut(g, "=")
		extra[k] = v
	}
	in := planInput{file: rp.Runbook, inventory: rp.Inventory}
	for _, f := range rp.VarFlags {
		k, v, _ := strings.Cut(f, "=")
		if g, ok := extra[k]; ok {
			if !strings.Contains(v, secret.Mask) && g != v {
				return nil, in, usagef("--var %s=%s: the plan was reviewed with %s=%s; a reviewed plan runs with the variables it was reviewed with; make a new plan to change them", k, g, k, v)
			}
			v = g
			delete(extra, k)
		} else if strings.Contains(v, secret.Mask) {
			return nil, in, usagef("--plan %s: variable %s holds a secret the plan does not keep: give it again with --var %s=VALUE", path, k, k)
		}
		in.vars = append(in.vars, k+"="+v)
	}
	for k := range extra {
		return nil, in, usagef("--var %s: a reviewed plan runs with the variables it was reviewed with; make a new plan to change them", k)
	}
	return &rp, in, nil
}

// planDifferences lists what changed since the plan was reviewed.
func planDifferences(ctx context.Context, rp *reviewedPlan, p *spec.Plan) []string {
	var diffs []string
	if p.Runbook.Digest != rp.RunbookDigest {
		diffs = append(diffs, fmt.Sprintf("runbook %s changed (sha256 %s… then, %s… now)", rp.Runbook, short(rp.RunbookDigest), short(p.Runbook.Digest)))
	}
	if p.Inventory != nil && p.Inventory.Digest != rp.InventoryDigest {
		diffs = append(diffs, fmt.Sprintf("inventory %s changed (sha256 %s… then, %s… now)", rp.Inventory, short(rp.InventoryDigest), short(p.Inventory.Digest)))
	}
	now := map[string]topologyNode{}
	for _, n := range snapshot(ctx, p.Inventory) {
		now[n.Node] = n
	}
	var names []string
	for _, then := range rp.Topology {
		names = append(names, then.Node)
		cur, ok := now[then.Node]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s is no longer in the inventory", then.Node))
		case cur.Role != then.Role:
			diffs = append(diffs, fmt.Sprintf("%s was %s, is %s", then.Node, then.Role, cur.Role))
		case cur.Timeline != then.Timeline:
			diffs = append(diffs, fmt.Sprintf("%s was on timeline %d, is on %d", then.Node, then.Timeline, cur.Timeline))
		case cur.Upstream != then.Upstream:
			diffs = append(diffs, fmt.Sprintf("%s streamed from %q, streams from %q", then.Node, then.Upstream, cur.Upstream))
		case cur.Major != then.Major:
			diffs = append(diffs, fmt.Sprintf("%s ran PostgreSQL %d, runs %d", then.Node, then.Major, cur.Major))
		}
	}
	sort.Strings(names)
	return diffs
}

func short(digest string) string {
	d := strings.TrimPrefix(digest, "sha256:")
	if len(d) > 12 {
		return d[:12]
	}
	return d
}
