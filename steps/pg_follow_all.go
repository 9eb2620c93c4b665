package steps

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
)

func init() {
	Register(Definition{
		Kind: "pg.follow_all",
		Doc:  "makes every other standby of the inventory stream from the given node, however many there are",
		Params: []params.Spec{
			{Name: "upstream", Type: params.Node, Required: true, Doc: "the node to stream from, usually the new primary"},
			{Name: "except", Type: params.Nodes, Doc: "nodes to leave alone, e.g. the old primary that rejoins on its own"},
			{Name: "within", Type: params.Duration, Default: "60s", Doc: "how long each may take to stream from the upstream once configured"},
		},
		New: func(v params.Values) (Step, error) {
			return &PGFollowAll{Upstream: v.Node("upstream"), Except: v.Nodes("except"), Within: v.Duration("within")}, nil
		},
	})
}

// PGFollowAll repoints every standby other than the upstream and the
// excepted nodes, with pg.follow's running-standby path, so one playbook
// serves a cluster of two standbys or eight. A standby that already streams
// from the upstream is left as it is; each is tried even when another fails.
type PGFollowAll struct {
	Upstream string
	Except   []string
	Within   time.Duration
}

var _ Step = (*PGFollowAll)(nil)

// followers are the nodes the step repoints.
func (f *PGFollowAll) followers(t *cluster.Target) []string {
	var out []string
	if t == nil || t.Cluster == nil {
		return out
	}
	for _, n := range t.Cluster.NodeNames() {
		if n != f.Upstream && !slices.Contains(f.Except, n) {
			out = append(out, n)
		}
	}
	return out
}

// Describe implements Step.
func (f *PGFollowAll) Describe(t *cluster.Target) Effect {
	nodes := f.followers(t)
	list := strings.Join(nodes, ", ")
	if list == "" {
		list = "no other node"
	}
	cmd := fmt.Sprintf("for each of %s: pg.follow to %s (ALTER SYSTEM SET primary_conninfo and primary_slot_name; SELECT pg_reload_conf(); wait until it streams)", list, f.Upstream)
	return Effect{Node: list, Command: cmd,
		Changes: fmt.Sprintf("%s stream from %s; a standby already streaming from it is left alone", list, f.Upstream)}
}

// Apply implements Step.
func (f *PGFollowAll) Apply(ctx context.Context, t *cluster.Target) error {
	var errs []error
	for _, name := range f.followers(t) {
		one := &PGFollow{Node: name, Upstream: f.Upstream, Slot: name, Within: f.Within}
		if err := one.Apply(ctx, t); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return nil
}
