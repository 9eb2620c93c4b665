package spec

// The inventory's poolers: the single `pooler:` of a cluster fronted by one
// PgBouncer, or `poolers:`, a list of named ones that a run holds and moves
// together.

import (
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/pg"
)

// poolerKey reads `pooler:`: a list of one, named cluster.DefaultPoolerName.
func (r *reader) poolerKey(inv *Inventory, k, v *yaml.Node) {
	if r.bothPoolerKeys(inv, k) {
		return
	}
	p := r.pooler(v, "pooler", false)
	p.Name = cluster.DefaultPoolerName
	inv.Cluster.Poolers = []*cluster.Pooler{p}
	inv.poolersKey = k
}

// poolersKey reads `poolers:`: a list of poolers, each with a name of its own.
func (r *reader) poolersKey(inv *Inventory, k, v *yaml.Node) {
	if r.bothPoolerKeys(inv, k) {
		return
	}
	inv.poolersKey = k
	if v.Kind != yaml.SequenceNode {
		r.errf(v, "poolers: want a list of poolers, each with a name, got %s", kindName(v))
		return
	}
	if len(v.Content) == 0 {
		r.errf(v, "poolers: the list is empty (leave the key out when clients connect to the nodes directly)")
		return
	}
	line := map[string]int{}
	var out []*cluster.Pooler
	for i, e := range v.Content {
		what := fmt.Sprintf("poolers[%d]", i)
		p := r.pooler(e, what, true)
		switch {
		case p.Name == "":
			if e.Kind == yaml.MappingNode && !hasKey(e, "name") {
				r.errf(e, "%s: missing key \"name\" (%s)", what, nameRule)
			}
			continue
		case line[p.Name] > 0:
			r.errf(e, "poolers: %q is given twice (first at line %d)", p.Name, line[p.Name])
			continue
		}
		line[p.Name] = e.Line
		out = append(out, p)
	}
	inv.Cluster.Poolers = out
}

// bothPoolerKeys reports, as a problem at the second key, an inventory that
// gives both `pooler:` and `poolers:`.
func (r *reader) bothPoolerKeys(inv *Inventory, k *yaml.Node) bool {
	if inv.poolersKey == nil {
		return false
	}
	r.errf(k, "inventory: %q and %q are both given (first at line %d): use %q alone, a list of named poolers, for more than one",
		inv.poolersKey.Value, k.Value, inv.poolersKey.Line, "poolers")
	return true
}

// pooler reads one pooler's mapping; named says it must carry a name.
func (r *reader) pooler(n *yaml.Node, what string, named bool) *cluster.Pooler {
	p := &cluster.Pooler{Host: cluster.Host{Transport: "local"}}
	handlers := map[string]func(k, v *yaml.Node){
		"kind": func(_, v *yaml.Node) {
			p.Kind = r.str(v, what+": kind")
			if p.Kind != "pgbouncer" && p.Kind != "" {
				r.errf(v, "%s: unknown kind %q (expected \"pgbouncer\")", what, p.Kind)
			}
		},
		"admin": func(_, v *yaml.Node) {
			p.Admin = r.str(v, what+": admin")
			if p.Admin != "" {
				if err := pg.CheckConninfo(p.Admin); err != nil {
					r.errf(v, "%s: admin: %v", what, err)
				}
			}
		},
		"database": func(_, v *yaml.Node) { p.Database = r.str(v, what+": database") },
		"config":   func(_, v *yaml.Node) { p.Config = r.str(v, what+": config") },
		"host":     func(_, v *yaml.Node) { p.Host = r.host(v, what+": host") },
	}
	if named {
		handlers["name"] = func(_, v *yaml.Node) {
			name := r.str(v, what+": name")
			if name != "" && !namePattern.MatchString(name) {
				r.errf(v, "%s: name %q: %s", what, name, nameRule)
				return
			}
			p.Name = name
		}
	}
	r.fields(n, what, handlers)
	return p
}

// hasKey reports whether mapping n has the key.
func hasKey(n *yaml.Node, key string) bool {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}
