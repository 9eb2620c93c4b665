package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/claim"
	"github.com/switchover/switchover/internal/topology"
	"github.com/switchover/switchover/runbook"
)

func ptr[T any](v T) *T { return &v }

// fixedStatus is a cluster as status could find it: pg1 the primary with
// synchronous replication (pg2 sync, pg3 potential) and slots, pg3 behind
// in bytes and in time, pg4 down, a run holding the cluster in the
// cluster and in this journal directory.
func fixedStatus() *clusterStatus {
	since := time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)
	holder := claim.Holder{RunID: "20261122T020000Z-1a2b3c", User: "dba", Host: "ops1", PID: 4242, Since: since}
	top := &topology.Topology{
		Cluster:     "prod",
		Primaries:   []string{"pg1"},
		InspectedAt: since.Add(time.Minute),
		Nodes: []*topology.Node{
			{Name: "pg1", Role: topology.RolePrimary, Timeline: 2, Version: 150008, Major: 15, SystemID: "7300000000000000001",
				SynchronousStandbyNames: "FIRST 1 (pg2, pg3)",
				Senders: []topology.Sender{
					{App: "pg2", Node: "pg2", State: "streaming", SyncState: "sync", SyncPriority: 1, Slot: "pg2", ReplayLagSeconds: ptr(0.0004)},
					{App: "pg3", Node: "pg3", State: "streaming", SyncState: "potential", SyncPriority: 2, Slot: "pg3", ReplayLagSeconds: ptr(2.5)},
				},
				Slots: []topology.Slot{
					{Name: "pg2", Type: "physical", Active: true, RestartLSN: "0/3000148", BehindBytes: ptr(int64(0))},
					{Name: "pg3", Type: "physical", Active: true, RestartLSN: "0/2FFFC00", BehindBytes: ptr(int64(1352))},
					{Name: "cdc", Type: "logical", Plugin: "pgoutput", Active: false, ConfirmedFlushLSN: "0/2000000", BehindBytes: ptr(int64(16777544))},
				}},
			{Name: "pg2", Role: topology.RoleStandby, Timeline: 2, Upstream: "10.0.0.1:5432", UpstreamNode: "pg1", Streaming: true,
				LagBytes: ptr(int64(0)), LagSeconds: ptr(0.0), ReplayLagSeconds: ptr(0.0004), SyncState: "sync", SyncPriority: ptr(1),
				Version: 150008, Major: 15, SystemID: "7300000000000000001"},
			{Name: "pg3", Role: topology.RoleStandby, Timeline: 2, Upstream: "10.0.0.1:5432", UpstreamNode: "pg1", Streaming: true,
				LagBytes: ptr(int64(1352)), LagSeconds: ptr(1.25), ReplayLagSeconds: ptr(2.5), SyncState: "potential", SyncPriority: ptr(2),
				Blocking: 1, Version: 150008, Major: 15, SystemID: "7300000000000000001"},
			{Name: "pg4", Error: "connect 10.0.0.4:5432: connection refused"},
		},
		Claim: &topology.RunClaim{Holder: holder, SeenOn: []string{"pg1", "pg2", "pg3"}},
	}
	st := &clusterStatus{Topology: top, Maintenance: "no cluster manager in the inventory",
		LocalLock: &runbook.LocalLock{Holder: holder, Live: true}}
	st.judge()
	return st
}

// status's text and JSON on a fixed topology, against golden files: every
// fact a DBA looks at first and last, and the verdict (degraded: pg4 is
// down, exit 3).
func TestStatusGolden(t *testing.T) {
	t.Parallel()
	st := fixedStatus()
	if st.ExitCode != exitPrecondition || st.Health != topology.Degraded {
		t.Fatalf("verdict %s, exit %d; want degraded, exit 3", st.Health, st.ExitCode)
	}
	var text bytes.Buffer
	renderStatus(&streams{out: &text}, st)
	golden(t, filepath.Join("testdata", "status.golden"), text.String())

	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join("testdata", "status_json.golden"), string(b)+"\n")
}

// The verdict and exit code of each shape of cluster.
func TestStatusVerdicts(t *testing.T) {
	t.Parallel()
	primary := func(name string) *topology.Node {
		return &topology.Node{Name: name, Role: topology.RolePrimary, Timeline: 1}
	}
	standby := func(name, from string) *topology.Node {
		return &topology.Node{Name: name, Role: topology.RoleStandby, Timeline: 1, Streaming: from != "", UpstreamNode: from, Upstream: from + ":5432"}
	}
	down := &topology.Node{Name: "pg3", Error: "connection refused"}
	tests := []struct {
		name      string
		nodes     []*topology.Node
		wantCode  int
		wantWhy   string
		primaries []string
	}{
		{"healthy", []*topology.Node{primary("pg1"), standby("pg2", "pg1"), standby("pg3", "pg1")}, exitOK, "", []string{"pg1"}},
		{"a cascade", []*topology.Node{primary("pg1"), standby("pg2", "pg1"), standby("pg3", "pg2")}, exitPrecondition,
			"pg3 streams from pg2, a standby (cascading replication): a switchover's preflight refuses it, every standby must stream from the primary pg1", []string{"pg1"}},
		{"no free connection slot", []*topology.Node{func() *topology.Node {
			n, none := primary("pg1"), 0
			n.FreeSlots, n.MaxConnections = &none, 100
			return n
		}(), standby("pg2", "pg1")}, exitPrecondition,
			"pg1 has no free connection slot for an ordinary client (max_connections 100, the rest reserved for superusers): new clients are refused", []string{"pg1"}},
		{"a standby down", []*topology.Node{primary("pg1"), standby("pg2", "pg1"), down}, exitPrecondition, "pg3 does not answer: connection refused", []string{"pg1"}},
		{"a standby not streaming", []*topology.Node{primary("pg1"), standby("pg2", "")}, exitPrecondition, "pg2 does not stream", []string{"pg1"}},
		{"a cascade cut off", []*topology.Node{primary("pg1"), standby("pg2", ""), standby("pg3", "pg2")}, exitPrecondition,
			"pg2 does not stream; pg3 streams from pg2, which does not stream from pg1", []string{"pg1"}},
		{"two primaries", []*topology.Node{primary("pg1"), primary("pg2")}, exitTwoPrimaries, "2 nodes answer as a primary: pg1, pg2", []string{"pg1", "pg2"}},
		{"no primary", []*topology.Node{standby("pg1", ""), down}, exitNoPrimary, "no node answers as a primary", nil},
		{"a standby following a node that does not answer", []*topology.Node{primary("pg1"), standby("pg2", "pg3"), down}, exitNoPrimary,
			"pg1 answers as the primary, but pg2 streams from pg3, which does not answer here: pg3 may still be a primary", []string{"pg1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := &clusterStatus{Topology: &topology.Topology{Cluster: "c", Nodes: tt.nodes, Primaries: tt.primaries}}
			st.judge()
			why := ""
			if err := st.err(); err != nil {
				why = err.(*healthError).verdict.Reasons[0]
				for _, r := range err.(*healthError).verdict.Reasons[1:] {
					why += "; " + r
				}
				if exitCode(err) != tt.wantCode {
					t.Errorf("exitCode = %d, want %d", exitCode(err), tt.wantCode)
				}
			}
			if st.ExitCode != tt.wantCode || why != tt.wantWhy {
				t.Errorf("exit %d (%q), want %d (%q)", st.ExitCode, why, tt.wantCode, tt.wantWhy)
			}
		})
	}
}
