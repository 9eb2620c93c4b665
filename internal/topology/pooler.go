package topology

import (
	"context"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/pgbouncer"
)

// askPooler reads the pooler's [databases] entries through its admin
// console; which node each points at is matched in routes.
func askPooler(ctx context.Context, p *cluster.Pooler) *Pooler {
	out := &Pooler{Name: p.Name, Kind: p.Kind, Database: p.Database}
	client, err := pgbouncer.Connect(ctx, p.Admin)
	if err != nil {
		out.Error = oneLine(err.Error())
		return out
	}
	defer client.Close()
	dbs, err := client.Databases(ctx)
	if err != nil {
		out.Error = oneLine(err.Error())
		return out
	}
	for _, d := range dbs {
		r := PoolerRoute{Name: d.Name, Database: d.Database, Paused: d.Paused, Disabled: d.Disabled}
		if d.Host != "" {
			r.Target = d.Host + ":" + d.Port
		}
		out.Databases = append(out.Databases, r)
		if d.Name == p.Database {
			out.Target, out.Paused, out.Disabled = d.Host+":"+d.Port, d.Paused, d.Disabled
		}
	}
	return out
}

// routes names the node each entry of every pooler points at.
func routes(ctx context.Context, t *Topology, b *addressBook) {
	for _, p := range t.Poolers {
		if p == nil || p.Error != "" {
			continue
		}
		p.Node = b.nodeAt(ctx, p.Target)
		for i := range p.Databases {
			p.Databases[i].Node = b.nodeAt(ctx, p.Databases[i].Target)
		}
	}
}
