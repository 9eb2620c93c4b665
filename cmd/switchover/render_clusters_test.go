package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/topology"
	"github.com/switchover/switchover/runbook/journal"
)

// A dry run's clusters: blue's and green's nodes with their versions, the
// labels padded so the nodes line up, and the major upgrade said; the
// same in JSON, the figures as fields.
func TestPlanShowsClusters(t *testing.T) {
	t.Parallel()
	ev := journal.Event{Type: journal.EventClusters, RunID: "r1", Seq: 2, DryRun: true, Time: time.Unix(0, 0),
		Message: "green runs PostgreSQL 17, blue 16: a major upgrade",
		Clusters: []topology.ClusterVersions{
			{Cluster: "prod-main", Nodes: []topology.NodeVersion{
				{Node: "pg1", Major: 16, From: topology.VersionFromServer},
				{Node: "pg2", Major: 16, From: topology.VersionFromBinaries, Error: "connection refused"},
				{Node: "pg3", Error: "connection refused"},
			}},
			{Cluster: "prod-17", Green: true, Nodes: []topology.NodeVersion{
				{Node: "green1", Major: 17, From: topology.VersionFromServer},
			}},
		}}
	var out bytes.Buffer
	newHumanView(&out).Observe(ev)
	want := `blue (prod-main): pg1 PostgreSQL 16, pg2 PostgreSQL 16 (its bin_dir's; the server did not answer), pg3 version unknown (connection refused)
green (prod-17):  green1 PostgreSQL 17
green runs PostgreSQL 17, blue 16: a major upgrade
`
	if out.String() != want {
		t.Errorf("human view:\n%s\nwant:\n%s", out.String(), want)
	}

	out.Reset()
	newJSONViewAt(&out, func() time.Time { return time.Unix(0, 0) }).Observe(ev)
	var got struct {
		Event    string                     `json:"event"`
		Message  string                     `json:"@message"`
		Clusters []topology.ClusterVersions `json:"clusters"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%s: %v", out.String(), err)
	}
	if got.Event != "clusters" || got.Message != ev.Message || len(got.Clusters) != 2 || !got.Clusters[1].Green ||
		got.Clusters[1].Nodes[0].Major != 17 || got.Clusters[0].Nodes[1].From != "bin_dir" {
		t.Errorf("JSON view: %s", out.String())
	}

	// Blue alone, one version: one line, no word of an upgrade.
	out.Reset()
	newHumanView(&out).Observe(journal.Event{Type: journal.EventClusters, Clusters: ev.Clusters[:1]})
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 1 || strings.Contains(out.String(), "upgrade") {
		t.Errorf("blue alone:\n%s", out.String())
	}
}
