package main

import (
	"fmt"
	"strings"

	"github.com/switchover/switchover/internal/topology"
)

// renderRepmgr shows repmgr's view beside PostgreSQL's: each node as
// repmgr.nodes registers it, repmgrd's state there, and every
// disagreement by name.
func renderRepmgr(io *streams, t *topology.Topology) {
	v := t.Repmgr
	if v == nil {
		return
	}
	if v.Error != "" {
		fmt.Fprintf(io.out, "repmgr:   %s\n", v.Error)
		return
	}
	for _, n := range t.Nodes {
		cell := "no record"
		if r := n.Repmgr; r != nil {
			cell = r.Type
			if r.Upstream != "" {
				cell += " of " + r.Upstream
			}
			if !r.Active {
				cell += ", inactive"
			}
		}
		if d := n.Repmgrd; d != nil {
			var st []string
			switch {
			case d.Error != "":
				st = append(st, "unknown")
			case d.Running:
				st = append(st, "running")
			default:
				st = append(st, "not running")
			}
			if d.Paused {
				st = append(st, "paused")
			}
			cell += "; repmgrd " + strings.Join(st, ", ")
		}
		fmt.Fprintf(io.out, "repmgr:   %s: %s\n", n.Name, cell)
	}
	if len(v.Others) > 0 {
		fmt.Fprintf(io.out, "repmgr:   registered, not in the inventory: %s\n", strings.Join(v.Others, ", "))
	}
	for _, n := range t.Nodes {
		if d, ok := v.Disagreements[n.Name]; ok {
			fmt.Fprintf(io.out, "DISAGREE: %s: repmgr: %s\n", n.Name, d)
		}
	}
}
