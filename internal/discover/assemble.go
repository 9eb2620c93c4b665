package discover

// From the members found to the inventory: one primary, names, hosts,
// directories, the pooler, the cluster's name and a candidate.

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/pg"
)

func (w *walker) discover(ctx context.Context) (*Inventory, error) {
	start, err := w.visit(ctx, w.tmpl.Host, w.tmpl.Port, "--conninfo")
	if err != nil {
		return nil, err
	}
	inv := &Inventory{From: start.endpoint()}
	switch {
	case w.o.Patroni != "":
		inv.Manager, err = w.patroni(ctx, start)
	case w.o.PgafMonitor != "":
		inv.Manager, err = w.pgafMonitor(ctx, start)
	default:
		inv.Manager, err = w.repmgr(ctx, start)
		if err == nil && inv.Manager == nil {
			err = w.streaming(ctx, start)
		}
	}
	if err != nil {
		return nil, err
	}
	primary, err := w.primary()
	if err != nil {
		return nil, err
	}
	w.nameMembers()
	if inv.Manager != nil && inv.Manager.Kind == cluster.ManagerRepmgr {
		inv.Manager.Configs = byName(w, inv.Manager.Configs)
	}
	for _, m := range w.order(primary) {
		n, err := w.node(ctx, m)
		if err != nil {
			return nil, err
		}
		inv.Nodes = append(inv.Nodes, n)
	}
	if w.o.PgBouncer != "" {
		if inv.Pooler, err = w.pooler(ctx, primary); err != nil {
			return nil, err
		}
	}
	inv.Cluster = w.clusterName(primary)
	inv.Candidate = candidate(inv)
	return inv, nil
}

// primary is the one member out of recovery.
func (w *walker) primary() (*member, error) {
	var primaries, all []string
	var p *member
	for _, m := range w.members {
		all = append(all, fmt.Sprintf("%s %s", m.endpoint(), m.f.State.Role))
		if m.f.State.Role == pg.RolePrimary {
			p = m
			primaries = append(primaries, m.endpoint())
		}
	}
	switch len(primaries) {
	case 1:
		return p, nil
	case 0:
		return nil, fmt.Errorf("no node is a primary (%s): the cluster is in the middle of a change, or the primary is not among the nodes found", strings.Join(all, ", "))
	}
	return nil, fmt.Errorf("more than one node is a primary (%s): a cluster with two primaries cannot be described, let alone switched over", strings.Join(primaries, ", "))
}

// byName re-keys repmgr's configs, which the walk keyed by repmgr's names,
// by the members' final names (the same, for a managed cluster).
func byName(w *walker, configs map[string]Value) map[string]Value {
	out := map[string]Value{}
	for _, m := range w.members {
		if v, ok := configs[m.managed]; ok {
			out[m.name.Text] = v
		}
	}
	return out
}

// order is the primary, then the standbys by name (pg2 before pg10).
func (w *walker) order(primary *member) []*member {
	out := []*member{primary}
	var rest []*member
	for _, m := range w.members {
		if m != primary {
			rest = append(rest, m)
		}
	}
	slices.SortFunc(rest, func(a, b *member) int { return naturalCompare(a.name.Text, b.name.Text) })
	return append(out, rest...)
}

// naturalCompare orders names with their numbers as numbers.
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digits(a), digits(b)
		if da > 0 && db > 0 {
			x, _ := strconv.Atoi(a[:da])
			y, _ := strconv.Atoi(b[:db])
			if x != y {
				return x - y
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func digits(s string) int {
	i := 0
	for i < len(s) && i < 9 && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// node is a member as the inventory writes it.
func (w *walker) node(ctx context.Context, m *member) (*Node, error) {
	n := &Node{
		Name:        m.name,
		Conninfo:    w.conninfoAt(m.host, m.port),
		DataDir:     dataDir(m.f),
		Role:        m.f.State.Role,
		Version:     m.f.State.Version,
		VersionText: m.f.VersionText,
		SystemID:    m.f.SystemID,
	}
	if m.upstream != nil {
		n.Upstream = m.upstream.name.Text
	}
	if m.sender != nil {
		n.SyncState = m.sender.SyncState
	}
	var err error
	if n.Host, err = w.hostFor(ctx, m.name.Text, m.host, n.DataDir.Text); err != nil {
		return nil, err
	}
	n.BinDir = binDir(ctx, m.f.State.Major(), n.Host.Transport == "local" && isLocal(ctx, m.host))
	return n, nil
}

// clusterName is the operator's, else the servers' cluster_name when it
// is a valid name, else a guess.
func (w *walker) clusterName(primary *member) Value {
	if w.o.Cluster != "" {
		return Read(w.o.Cluster)
	}
	cn := primary.f.ClusterName
	if cluster.NamePattern.MatchString(cn) {
		return Read(cn)
	}
	if s := sanitize(cn); s != "" {
		return Guess(s, fmt.Sprintf("the servers' cluster_name %q made a valid name", cn))
	}
	return Guess("main", "the servers set no cluster_name; the name keeps two runs on one cluster apart, so give each cluster its own (--cluster)")
}

func synchronous(n *Node) bool { return n.SyncState == "sync" || n.SyncState == "quorum" }

// candidate is a standby the primary's pg_stat_replication shows, a
// synchronous one first: a guess, since choosing is the operator's.
func candidate(inv *Inventory) Value {
	p := inv.Primary()
	var best *Node
	for _, n := range inv.Nodes {
		if n.Role != pg.RoleStandby || n.Upstream != p.Name.Text || n.SyncState == "" {
			continue
		}
		if best == nil || (!synchronous(best) && synchronous(n)) {
			best = n
		}
	}
	if best == nil {
		return Value{}
	}
	return Guess(best.Name.Text, "a standby streaming from the primary; choose the one to promote, or give --candidate at run time")
}
