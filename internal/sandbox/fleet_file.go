package sandbox

import (
	"fmt"
	"path/filepath"
	"strings"
)

// FleetFileName is the fleet file a fleet sandbox writes in its
// directory, for the fleet commands.
const FleetFileName = "fleet.yaml"

// FleetPlaybook is the playbook a fleet sandbox's fleet file runs on every
// cluster: the sandbox's clusters are plain streaming ones.
const FleetPlaybook = "postgres-streaming-switchover"

// FleetLabel is the label a fleet sandbox's clusters alternate, a and b,
// so that a per-label limit has two groups to keep apart.
func FleetLabel(i int) string {
	if i%2 == 0 {
		return "a"
	}
	return "b"
}

// RenderFleetFile is the fleet file for clusters (in order; index 0 is
// c1), each inventory named relative to the file: a canary wave of one,
// then half, then the rest; two runs at once, one per dc; a halt on any
// lost commit or a window over 5s.
func RenderFleetFile(clusters []ClusterPorts) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by `+"`switchover sandbox up --clusters %d`"+`: a fleet of rehearsal clusters on
# 127.0.0.1 with trust authentication. Not for production.
# fleet:       the fleet's name, in its journal and reports
# playbook:    the runbook each cluster's run follows
# candidate:   auto: each cluster's run picks its own candidate
# clusters:    each cluster's inventory (relative to this file) and labels; dc alternates a/b
# waves:       the order: one canary cluster first, then half of the clusters, then the rest
# concurrency: at most 2 clusters switching at once, and at most 1 per dc
# halt:        stop starting clusters once a run lost a commit or could not take writes for over 5s
fleet: sandbox-fleet
playbook: %s
candidate: auto
clusters:
`, len(clusters), FleetPlaybook)
	for i, c := range clusters {
		fmt.Fprintf(&b, "  - inventory: %s\n    labels: {dc: %s}\n", filepath.ToSlash(filepath.Join(c.Name, "inventory.yaml")), FleetLabel(i))
	}
	b.WriteString(`waves:
  - name: canary
    clusters: 1
  - name: second
    percent: 50
  - name: rest
concurrency:
  max: 2
  per_label: {dc: 1}
halt:
  lost_commits: 0
  window_over: 5s
`)
	return []byte(b.String())
}
