package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchover/switchover/internal/fleet"
)

// --select narrows every fleet command to the clusters labelled so, and
// keeps the selection's fleet journal apart from the whole fleet's: a
// report with --select dc=a reads the run of dc=a, one without it the
// whole fleet's.
func TestFleetSelect(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, c := range []string{"c1", "c2"} {
		writeFile(t, filepath.Join(dir, c+".yaml"), "cluster: "+c+"\nnodes:\n  pg1: {conninfo: \"host=127.0.0.1 port=1\"}\n")
	}
	path := filepath.Join(dir, "fleet.yaml")
	writeFile(t, path, "fleet: patch\nplaybook: postgres-streaming-switchover\nclusters:\n"+
		"  - {inventory: c1.yaml, labels: {dc: a}}\n  - {inventory: c2.yaml, labels: {dc: b}}\n")

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--select", "dc"}, `--select "dc": want LABEL=VALUE`},
		{[]string{"--select", "=a"}, `--select "=a": want LABEL=VALUE`},
		{[]string{"--select", "dc=a", "--select", "dc=b"}, "a cluster has one value of a label"},
		{[]string{"--select", "dc=c"}, "select {dc: c}: no cluster of fleet patch carries these labels"},
	} {
		for _, verb := range []string{"plan", "run", "resume", "status", "report"} {
			code, out, errOut := executeT(t, append([]string{"fleet", verb, path, "--journal-dir", dir}, tt.args...)...)
			if code != exitUsage || !strings.Contains(errOut, tt.want) {
				t.Errorf("fleet %s %v: exit %d, want %d and %q:\n%s%s", verb, tt.args, code, exitUsage, tt.want, out, errOut)
			}
		}
	}

	// A fleet run of dc=a's, journaled where a selection's journal goes.
	f := &fleet.Fleet{Name: "patch", Clusters: []*fleet.Cluster{{Name: "c1", Labels: map[string]string{"dc": "a"}}},
		Waves: []fleet.Wave{{Name: "all", Clusters: []string{"c1"}}}}
	if err := f.Select(map[string]string{"dc": "a"}); err != nil {
		t.Fatal(err)
	}
	fdir := f.JournalDir(dir)
	if err := os.MkdirAll(fdir, 0o700); err != nil {
		t.Fatal(err)
	}
	recs := haltedFleetRecords("20260314T220000")[:6]
	recs[0].Start.Waves = []fleet.Wave{{Name: "all", Clusters: []string{"c1"}}}
	recs[0].Start.Select = map[string]string{"dc": "a"}
	var b strings.Builder
	for _, r := range recs {
		line, _ := json.Marshal(r)
		b.Write(append(line, '\n'))
	}
	writeFile(t, filepath.Join(fdir, "20260314T220000.jsonl"), b.String())

	code, out, errOut := executeT(t, "fleet", "report", path, "--journal-dir", dir, "--select", "dc=a")
	if code != 0 || !strings.Contains(out, "| selection   | dc=a (only these clusters took part)") {
		t.Fatalf("report --select dc=a: exit %d:\n%s%s", code, out, errOut)
	}
	code, out, errOut = executeT(t, "fleet", "status", path, "--journal-dir", dir, "--select", "dc=a")
	if code != 0 || !strings.Contains(out, "c1") || strings.Contains(out, "c2") {
		t.Fatalf("status --select dc=a: exit %d:\n%s%s", code, out, errOut)
	}
	for _, args := range [][]string{nil, {"--select", "dc=b"}} {
		code, out, errOut = executeT(t, append([]string{"fleet", "report", path, "--journal-dir", dir}, args...)...)
		if code != exitUsage || !strings.Contains(errOut, "has no run in") {
			t.Errorf("report %v: exit %d: dc=a's run is not this one's:\n%s%s", args, code, out, errOut)
		}
	}
}
