package spec

// The inventory schema: the cluster's name, its nodes, and the optional
// pooler and manager.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/manager"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/transport"
)

// LoadInventory parses an inventory: the cluster's name, its nodes, the
// optional pooler and manager, and the optional green cluster.
func LoadInventory(file string, src []byte) (*Inventory, error) {
	r := &reader{file: file, reported: map[*yaml.Node]bool{}}
	sum := sha256.Sum256(src)
	inv := &Inventory{File: file, Digest: hex.EncodeToString(sum[:]), Cluster: &cluster.Cluster{Nodes: map[string]*cluster.Node{}}}
	root := r.parse(src, "an inventory (cluster:, nodes:, ...)")
	if root == nil {
		return nil, r.probs.err()
	}
	var hasName, hasNodes bool
	var routerNode *yaml.Node
	suggested := r.fields(root, "inventory", map[string]func(k, v *yaml.Node){
		"cluster": func(k, v *yaml.Node) {
			hasName = true
			inv.Cluster.Name = r.name(v, "cluster")
		},
		"vars": func(k, v *yaml.Node) { inv.Vars = r.vars(v, "vars") },
		"nodes": func(k, v *yaml.Node) {
			hasNodes = true
			inv.order = r.nodes(v, "nodes", inv.Cluster, inv)
		},
		"green":   func(k, v *yaml.Node) { inv.Cluster.Green = r.green(v, inv) },
		"pooler":  func(k, v *yaml.Node) { r.poolerKey(inv, k, v) },
		"poolers": func(k, v *yaml.Node) { r.poolersKey(inv, k, v) },
		"manager": func(k, v *yaml.Node) { inv.Cluster.Manager = r.manager(v) },
		"router":  func(k, v *yaml.Node) { routerNode, inv.Cluster.Router = v, r.router(v) },
	})
	r.checkRouterServers(routerNode, inv) // after the nodes, wherever they are in the file
	if !hasName && !suggested["cluster"] {
		r.probs.add(r.pos(root), "inventory: missing key \"cluster\" (the cluster's name)")
	}
	if !hasNodes && !suggested["nodes"] {
		r.probs.add(r.pos(root), "inventory: missing key \"nodes\"")
	}
	return inv, r.probs.err()
}

// nodes reads a mapping of node names to nodes into c (the cluster's
// `nodes:`, or green's) and returns the names in the file's order. A name
// is unique across both clusters: steps name nodes of either.
func (r *reader) nodes(n *yaml.Node, what string, c *cluster.Cluster, inv *Inventory) []string {
	if n.Kind != yaml.MappingNode {
		r.errf(n, "%s: want a mapping of node names to nodes, got %s", what, kindName(n))
		return nil
	}
	if len(n.Content) == 0 {
		r.errf(n, "%s: the mapping is empty", what)
	}
	if inv.nodeAt == nil {
		inv.nodeAt = map[string]nodeSeen{}
	}
	var order []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || !namePattern.MatchString(k.Value) {
			r.errf(k, "%s: %s is not a node name (%s)", what, kindName(k), nameRule)
			continue
		}
		if first, dup := inv.nodeAt[k.Value]; dup {
			if first.section == what {
				r.errf(k, "%s: %q is given twice (first at line %d)", what, k.Value, first.line)
			} else {
				r.errf(k, "%s: %q is already a node under %s (line %d): node names are unique across the cluster and green", what, k.Value, first.section, first.line)
			}
			continue
		}
		inv.nodeAt[k.Value] = nodeSeen{section: what, line: k.Line}
		node := &cluster.Node{Name: k.Value}
		nw := fmt.Sprintf("node %q", k.Value)
		r.fields(v, nw, map[string]func(k, v *yaml.Node){
			"conninfo": func(_, v *yaml.Node) {
				node.Conninfo = r.str(v, nw+": conninfo")
				if node.Conninfo != "" {
					if err := pg.CheckConninfo(node.Conninfo); err != nil {
						r.errf(v, "%s: conninfo: %v", nw, err)
					}
				}
			},
			"host":     func(_, v *yaml.Node) { node.Host = r.host(v, nw+": host") },
			"data_dir": func(_, v *yaml.Node) { node.DataDir = r.str(v, nw+": data_dir") },
			"bin_dir":  func(_, v *yaml.Node) { node.BinDir = r.str(v, nw+": bin_dir") },
		})
		c.Nodes[k.Value] = node
		order = append(order, k.Value)
		c.Order = append(c.Order, k.Value)
	}
	return order
}

// nodeSeen is where a node name was first given: under which section
// (nodes or green: nodes) and on which line.
type nodeSeen struct {
	section string
	line    int
}

// green reads the green section: the target cluster of a blue/green move,
// an optional name and its nodes in the format of the cluster's own.
func (r *reader) green(n *yaml.Node, inv *Inventory) *cluster.Cluster {
	g := &cluster.Cluster{Nodes: map[string]*cluster.Node{}}
	var hasNodes bool
	suggested := r.fields(n, "green", map[string]func(k, v *yaml.Node){
		"name": func(_, v *yaml.Node) { g.Name = r.name(v, "green: name") },
		"nodes": func(_, v *yaml.Node) {
			hasNodes = true
			r.nodes(v, "green: nodes", g, inv)
		},
	})
	if n.Kind == yaml.MappingNode && !hasNodes && !suggested["nodes"] {
		r.errf(n, "green: missing key \"nodes\" (the green cluster's nodes, as under nodes:)")
	}
	return g
}

// host reads `local`, or a mapping {transport: local|ssh, address: ...}.
func (r *reader) host(n *yaml.Node, what string) cluster.Host {
	var h cluster.Host
	if n.Kind == yaml.ScalarNode {
		h.Transport = n.Value
	} else {
		r.fields(n, what, map[string]func(k, v *yaml.Node){
			"transport":  func(_, v *yaml.Node) { h.Transport = r.str(v, what+": transport") },
			"address":    func(_, v *yaml.Node) { h.Address = r.str(v, what+": address") },
			"user":       func(_, v *yaml.Node) { h.User = r.str(v, what+": user") },
			"ssh_config": func(_, v *yaml.Node) { h.SSHConfig = r.str(v, what+": ssh_config") },
		})
	}
	switch h.Transport {
	case "local":
		if h.Address != "" {
			r.errf(n, "%s: address is for transport ssh; a local host has none", what)
		}
	case "ssh":
		if h.Address == "" {
			r.errf(n, "%s: transport ssh needs an address, e.g. {transport: ssh, address: \"postgres@db1\"}", what)
		} else if _, _, _, err := transport.ParseSSHAddress(h.Address); err != nil {
			r.errf(n, "%s: address: %v", what, err)
		}
	default:
		r.errf(n, "%s: unknown transport %q (expected \"local\" or \"ssh\")", what, h.Transport)
	}
	return h
}

func (r *reader) manager(n *yaml.Node) *cluster.Manager {
	m := &cluster.Manager{}
	r.fields(n, "manager", map[string]func(k, v *yaml.Node){
		"kind": func(_, v *yaml.Node) {
			m.Kind = cluster.ManagerKind(r.str(v, "manager: kind"))
			if _, ok := manager.Lookup(m.Kind); !ok {
				r.errf(v, "manager: unknown kind %q (expected %s)", m.Kind, manager.Known())
			}
		},
		"urls": func(_, v *yaml.Node) {
			if v.Kind != yaml.SequenceNode {
				r.errf(v, "manager: urls: want a list, got %s", kindName(v))
				return
			}
			for _, e := range v.Content {
				m.URLs = append(m.URLs, r.str(e, "manager: urls"))
			}
		},
		"configs":  func(_, v *yaml.Node) { m.Configs = r.nodePaths(v, "manager: configs") }, // repmgr: each node's repmgr.conf
		"database": func(_, v *yaml.Node) { m.Database = r.str(v, "manager: database") },     // repmgr: the database of its schema
		"username": func(_, v *yaml.Node) { m.Username = r.str(v, "manager: username") },
		// pg_auto_failover: the monitor's connection string, formation and group.
		"monitor": func(_, v *yaml.Node) {
			m.Monitor = r.str(v, "manager: monitor")
			if err := pg.CheckConninfo(m.Monitor); err != nil {
				r.errf(v, "manager: monitor: %v", err)
			}
		},
		"formation": func(_, v *yaml.Node) { m.Formation = r.str(v, "manager: formation") },
		"group": func(_, v *yaml.Node) {
			g, err := strconv.Atoi(strings.TrimSpace(r.str(v, "manager: group")))
			if err != nil || g < 0 {
				r.errf(v, "manager: group: want a number 0 or more, got %q", v.Value)
			}
			m.Group = g
		},
		"password": func(_, v *yaml.Node) { m.Password = r.str(v, "manager: password") },
		"ca_file":  func(_, v *yaml.Node) { m.CAFile = r.str(v, "manager: ca_file") },
		"insecure": func(_, v *yaml.Node) {
			switch s := strings.TrimSpace(r.str(v, "manager: insecure")); s {
			case "true", "false":
				m.Insecure = s == "true"
			case "":
			default:
				r.errf(v, "manager: insecure: want true or false, got %q", s)
			}
		},
	})
	if m.Kind == cluster.ManagerPgAutoFailover {
		if m.Monitor == "" {
			r.errf(n, "manager: kind pg_auto_failover needs monitor: the monitor's connection string")
		}
		if m.Formation == "" {
			m.Formation = "default"
		}
	}
	return m
}

// nodePaths reads a mapping of node names to paths (repmgr's configs).
func (r *reader) nodePaths(n *yaml.Node, what string) map[string]string {
	if n.Kind != yaml.MappingNode {
		r.errf(n, "%s: want a mapping of node names to paths, got %s", what, kindName(n))
		return nil
	}
	out := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		out[k.Value] = r.str(v, what+": "+k.Value)
	}
	return out
}
