package main

import (
	"fmt"
	"strings"

	"github.com/switchover/switchover/internal/topology"
)

// clusterLines renders a dry run's clusters for a person: one line a
// cluster, blue then green, each node with the major version of PostgreSQL
// it runs; aligned pads the labels so the nodes line up.
func clusterLines(vs []topology.ClusterVersions, aligned bool) []string {
	labels := make([]string, len(vs))
	width := 0
	for i, c := range vs {
		role := "blue"
		if c.Green {
			role = "green"
		}
		labels[i] = role + ":"
		if c.Cluster != "" {
			labels[i] = fmt.Sprintf("%s (%s):", role, c.Cluster)
		}
		if aligned {
			width = max(width, runeLen(labels[i]))
		}
	}
	out := make([]string, len(vs))
	for i, c := range vs {
		nodes := make([]string, len(c.Nodes))
		for j, n := range c.Nodes {
			nodes[j] = nodeVersionText(n)
		}
		out[i] = fmt.Sprintf("%-*s %s", width, labels[i], strings.Join(nodes, ", "))
	}
	return out
}

// nodeVersionText is one node and its version: "pg1 PostgreSQL 17", with
// where it was learnt when the server did not answer.
func nodeVersionText(n topology.NodeVersion) string {
	switch {
	case n.Major > 0 && n.From == topology.VersionFromBinaries:
		return fmt.Sprintf("%s PostgreSQL %d (its bin_dir's; the server did not answer)", n.Node, n.Major)
	case n.Major > 0:
		return fmt.Sprintf("%s PostgreSQL %d", n.Node, n.Major)
	case n.Error != "":
		return fmt.Sprintf("%s version unknown (%s)", n.Node, n.Error)
	}
	return n.Node + " version unknown"
}
