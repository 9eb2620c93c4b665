package checks

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/pgbouncer"
)

func init() {
	Register(Definition{
		Kind: "pgbouncer.entries",
		Doc:  "every pooler's client database routes to the primary; says, pooler by pooler, which [databases] entries a repoint moves with it and which it leaves alone",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: "the primary the poolers' client database must route to"},
		},
		New: func(v params.Values) (Check, error) { return &PoolerEntries{Node: v.Node("node")}, nil },
	})
}

// PoolerEntries passes when every pooler's client database routes to the
// node (the primary), and says which of each pooler's [databases] entries
// route there too, so that pgbouncer.repoint moves them with it, and which
// route elsewhere (a read-only entry on a standby) and are left alone. It
// runs in preflight, so a plan shows both before anything is held.
type PoolerEntries struct {
	Node string
}

var _ Check = (*PoolerEntries)(nil)

// Describe implements Check.
func (c *PoolerEntries) Describe(t *cluster.Target) string {
	return fmt.Sprintf("every pooler's client database routes to %s (SHOW DATABASES); the entries on the same server move with it at the repoint, the others are left alone", c.Node)
}

// poolerEntries is what one pooler's SHOW DATABASES says.
type poolerEntries struct {
	route       string   // where the client database routes
	moved, left []string // "name" and "name (host:port)"
	err         error
}

// Run implements Check.
func (c *PoolerEntries) Run(ctx context.Context, t *cluster.Target) Result {
	ps := t.Cluster.Poolers
	if len(ps) == 0 {
		return Passed("no pooler in the inventory: clients connect to the nodes directly")
	}
	n, err := t.Node(c.Node)
	if err != nil {
		return Errored(err)
	}
	eps, err := conninfoEndpoints(n.Conninfo)
	if err != nil {
		return Errored(fmt.Errorf("node %q: conninfo: %w", c.Node, err))
	}
	answers := make([]poolerEntries, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Go(func() { answers[i] = readEntries(ctx, p) })
	}
	wg.Wait()
	var seen, bad, errs []string
	values := map[string]any{}
	for i, a := range answers {
		p := ps[i]
		name := p.Name
		if a.err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", name, a.err))
			continue
		}
		at := pg.SameEndpoint(ctx, a.route, eps[0])
		s := fmt.Sprintf("%s: %s routes to %s", name, p.Database, a.route)
		if at {
			s = fmt.Sprintf("%s: %s routes to %s (%s); the repoint moves %s", name, p.Database, c.Node, a.route, strings.Join(a.moved, ", "))
			if len(a.left) > 0 {
				s += "; left alone: " + strings.Join(a.left, ", ")
			}
		} else {
			bad = append(bad, name)
		}
		seen = append(seen, s)
		values[name] = map[string]any{"route": a.route, "moved": a.moved, "left_alone": a.left}
	}
	wanted := fmt.Sprintf("every pooler's client database routing to %s (%s)", c.Node, eps[0])
	switch {
	case len(errs) > 0:
		return Result{Status: Error, Observed: strings.Join(append(errs, seen...), "; "), Wanted: wanted, Values: values}
	case len(bad) > 0:
		return Result{Status: Fail, Values: values, Wanted: wanted,
			Observed: fmt.Sprintf("not routing to %s: %s; %s", c.Node, strings.Join(bad, ", "), strings.Join(seen, "; "))}
	}
	return Result{Status: Pass, Observed: strings.Join(seen, "; "), Values: values}
}

// readEntries reads one pooler's entries: where its client database
// routes, the entries routing to the same server, the others.
func readEntries(ctx context.Context, p *cluster.Pooler) poolerEntries {
	var out poolerEntries
	if p.Kind != "" && p.Kind != "pgbouncer" {
		out.err = fmt.Errorf("the pooler is %q; only pgbouncer can be asked", p.Kind)
		return out
	}
	client, err := pgbouncer.Connect(ctx, p.Admin)
	if err != nil {
		out.err = fmt.Errorf("connect to the pgbouncer admin console: %s", connProblem(ctx, err))
		return out
	}
	defer client.Close()
	dbs, err := client.Databases(ctx)
	if err != nil {
		out.err = err
		return out
	}
	d, err := dbs.Entry(p.Database)
	if err != nil {
		out.err = err
		return out
	}
	out.route = net.JoinHostPort(d.Host, d.Port)
	for _, d := range dbs {
		if d.Host == "" {
			continue // the admin console, or an entry on a local socket
		}
		if route := net.JoinHostPort(d.Host, d.Port); route == out.route {
			out.moved = append(out.moved, d.Name)
		} else {
			out.left = append(out.left, fmt.Sprintf("%s (%s)", d.Name, route))
		}
	}
	return out
}
