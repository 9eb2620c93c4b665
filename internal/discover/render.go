package discover

// The inventory file: YAML the inventory loader reads, each guessed value
// followed by a comment that says so and why.

import (
	"bytes"
	"fmt"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/switchover/switchover/internal/pg"
)

// GuessedMarker starts the comment that follows every guessed value.
const GuessedMarker = "# guessed: "

// Render writes inv as an inventory file. It never writes a password:
// every connection string in inv was rendered without one.
func Render(inv *Inventory) []byte {
	root := mapping()
	root.HeadComment = fmt.Sprintf("# Written by `switchover inventory discover` from the cluster as it was, starting at %s.\n"+
		"# A value followed by %q was not read from the cluster: check it before a run.\n"+
		"# No password is written: connections find theirs in PGPASSWORD, ~/.pgpass or a passfile.",
		inv.From, GuessedMarker[:len(GuessedMarker)-1])
	add(root, "cluster", value(inv.Cluster))
	if inv.Candidate.Text != "" {
		vars := mapping()
		add(vars, "candidate", value(inv.Candidate))
		add(root, "vars", vars)
	}
	nodes := mapping()
	for _, n := range inv.Nodes {
		key := value(n.Name)
		key.HeadComment = "# " + describe(n)
		body := mapping()
		add(body, "conninfo", quoted(n.Conninfo))
		add(body, "host", host(n.Host))
		add(body, "data_dir", value(n.DataDir))
		add(body, "bin_dir", value(n.BinDir))
		nodes.Content = append(nodes.Content, key, body)
	}
	add(root, "nodes", nodes)
	if p := inv.Pooler; p != nil {
		body := mapping()
		add(body, "kind", scalar("pgbouncer"))
		add(body, "admin", quoted(p.Admin))
		add(body, "database", value(p.Database))
		add(body, "config", value(p.Config))
		add(body, "host", host(p.Host))
		add(root, "pooler", body)
	}
	if m := inv.Manager; m != nil {
		add(root, "manager", manager(m, inv))
	}
	var b bytes.Buffer
	e := yaml.NewEncoder(&b)
	e.SetIndent(2)
	// Encoding a tree of plain strings into a buffer cannot fail.
	_ = e.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}})
	_ = e.Close()
	return b.Bytes()
}

// describe is the comment line over a node: its role and version.
func describe(n *Node) string {
	role := string(n.Role)
	if n.Role == pg.RoleStandby {
		switch {
		case n.Upstream != "" && n.SyncState != "":
			role = fmt.Sprintf("standby of %s (%s)", n.Upstream, n.SyncState)
		case n.Upstream != "":
			role = "standby of " + n.Upstream
		default:
			role = "standby, not streaming"
		}
	}
	return fmt.Sprintf("%s, PostgreSQL %s, server_version_num %d", role, n.VersionText, n.Version)
}

func manager(m *Manager, inv *Inventory) *yaml.Node {
	body := mapping()
	add(body, "kind", scalar(string(m.Kind)))
	switch {
	case len(m.URLs) > 0:
		urls := &yaml.Node{Kind: yaml.SequenceNode}
		for _, u := range m.URLs {
			urls.Content = append(urls.Content, scalar(u))
		}
		add(body, "urls", urls)
		if m.Username != "" {
			add(body, "username", scalar(m.Username))
		}
	case m.Monitor != "":
		add(body, "monitor", quoted(m.Monitor))
		add(body, "formation", scalar(m.Formation))
		add(body, "group", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(m.Group)})
	case m.Configs != nil:
		add(body, "database", scalar(m.Database))
		configs := mapping()
		for _, n := range inv.Nodes {
			if v, ok := m.Configs[n.Name.Text]; ok {
				add(configs, n.Name.Text, value(v))
			}
		}
		add(body, "configs", configs)
	}
	return body
}

// host is `local`, or a flow mapping of the transport's settings.
func host(h Host) *yaml.Node {
	var n *yaml.Node
	if h.Transport == "local" && h.User == "" {
		n = scalar("local")
	} else {
		n = mapping()
		n.Style = yaml.FlowStyle
		add(n, "transport", scalar(h.Transport))
		for _, kv := range [][2]string{{"address", h.Address}, {"user", h.User}, {"ssh_config", h.SSHConfig}} {
			if kv[1] != "" {
				add(n, kv[0], scalar(kv[1]))
			}
		}
	}
	if h.Guessed != "" {
		n.LineComment = GuessedMarker + h.Guessed
	}
	return n
}

func mapping() *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode} }

// scalar is a string, quoted when YAML would read it as something else.
func scalar(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

// quoted is a connection string, always in double quotes, as the sandbox
// and the README write them.
func quoted(s string) *yaml.Node {
	n := scalar(s)
	n.Style = yaml.DoubleQuotedStyle
	return n
}

// value is v, followed by the guessed marker when it is a guess.
func value(v Value) *yaml.Node {
	n := scalar(v.Text)
	if v.Guessed != "" {
		n.LineComment = GuessedMarker + v.Guessed
	}
	return n
}

func add(m *yaml.Node, key string, v *yaml.Node) {
	m.Content = append(m.Content, scalar(key), v)
}
