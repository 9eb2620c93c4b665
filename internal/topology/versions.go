package topology

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/pg"
)

// ClusterVersions is a cluster's nodes, each with the major version of
// PostgreSQL it runs: what a plan shows of blue and, in a blue/green move,
// of green. Field names are stable: scripts read them in the plan's
// events.
type ClusterVersions struct {
	Cluster string `json:"cluster"`
	// Green marks the inventory's green cluster, the target of the move.
	Green bool          `json:"green,omitempty"`
	Nodes []NodeVersion `json:"nodes"`
}

// NodeVersion is one node's major version and where it was learnt.
type NodeVersion struct {
	Node  string `json:"node"`
	Major int    `json:"major_version,omitempty"`
	// From says where Major was learnt: VersionFromServer, or
	// VersionFromBinaries when the server did not answer; "" when unknown.
	From  string `json:"from,omitempty"`
	Error string `json:"error,omitempty"` // why the version is unknown, or why the server did not answer
}

// Where a node's version was learnt.
const (
	VersionFromServer   = "server"
	VersionFromBinaries = "bin_dir"
)

// Major is the cluster's major version: the one its nodes report, the
// highest when they differ; 0 when none is known.
func (c ClusterVersions) Major() int {
	m := 0
	for _, n := range c.Nodes {
		m = max(m, n.Major)
	}
	return m
}

// Versions asks every node of c, and of its green cluster, the major
// version of its server; of a node whose server does not answer, the
// version of the server binary in its bin_dir (`postgres --version` on its
// host). Blue comes first, then green when the inventory has one. It never
// fails: what could not be learnt is said in the node's Error. ctx bounds
// it all.
func Versions(ctx context.Context, c *cluster.Cluster) []ClusterVersions {
	if c == nil {
		return nil
	}
	out := []ClusterVersions{versionsOf(ctx, c, false)}
	if c.Green != nil {
		out = append(out, versionsOf(ctx, c.Green, true))
	}
	return out
}

func versionsOf(ctx context.Context, c *cluster.Cluster, green bool) ClusterVersions {
	cv := ClusterVersions{Cluster: c.Name, Green: green}
	t := Inspect(ctx, c, Options{NodesOnly: true, StateOnly: true})
	cv.Nodes = make([]NodeVersion, len(t.Nodes))
	var wg sync.WaitGroup
	for i, n := range t.Nodes {
		cv.Nodes[i] = NodeVersion{Node: n.Name}
		if n.Error == "" && n.Major > 0 {
			cv.Nodes[i].Major, cv.Nodes[i].From = n.Major, VersionFromServer
			continue
		}
		cv.Nodes[i].Error = n.Error
		wg.Go(func() { binVersion(ctx, c.Nodes[n.Name], &cv.Nodes[i]) })
	}
	wg.Wait()
	return cv
}

// binVersion asks the node's bin_dir for its server's version.
func binVersion(ctx context.Context, n *cluster.Node, v *NodeVersion) {
	if n == nil || n.BinDir == "" {
		return
	}
	ex, err := n.Host.Executor()
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := ex.Run(ctx, pg.BinVersionCommand(n.BinDir))
	switch {
	case err != nil:
		v.Error += fmt.Sprintf("; %s --version: %s", n.BinDir, oneLine(err.Error()))
	case out.ExitCode != 0 || pg.MajorOfVersionText(out.Stdout) == 0:
		v.Error += fmt.Sprintf("; %s/postgres --version: %s", n.BinDir, oneLine(strings.TrimSpace(out.Combined())))
	default:
		v.Major, v.From = pg.MajorOfVersionText(out.Stdout), VersionFromBinaries
	}
}

// MajorUpgrade says, of versions as Versions returns them, green's and
// blue's major versions when green runs another one than blue.
func MajorUpgrade(vs []ClusterVersions) (green, blue int, ok bool) {
	for _, c := range vs {
		if c.Green {
			green = c.Major()
		} else {
			blue = c.Major()
		}
	}
	return green, blue, green > 0 && blue > 0 && green != blue
}
