package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/fleet"
)

// haltedFleetRecords is a fleet run's journal: a canary done, a cluster
// the plan refused and --skip-refused skipped, a cluster whose window
// breached halt.window_over and halted the fleet, one running beside it
// that finished done, and one the halt kept from starting.
func haltedFleetRecords(id string) []fleet.Record {
	t0 := time.Date(2026, 3, 14, 22, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	done := func(run, old, new string, window float64, lost, errs int64, took int64) *fleet.Outcome {
		return &fleet.Outcome{RunID: run, Status: "done", OldPrimary: old, NewPrimary: new, DurationMS: took,
			Figures: fleet.Figures{WindowMS: ptr(window), Lost: ptr(lost), Errors: ptr(errs), Acked: ptr(int64(900))}}
	}
	waves := []fleet.Wave{{Name: "canary", Clusters: []string{"c1"}}, {Name: "rest", Clusters: []string{"c2", "c3", "c4", "c5"}}}
	recs := []fleet.Record{
		{Time: at(0), Event: fleet.EventFleetStarted, User: "dba", Host: "bastion-a", Start: &fleet.Start{File: "/srv/fleets/patch.yaml",
			Digest: "4f2a9c", Key: "patch@2026-03-14T22:00:00Z", Playbook: "postgres-streaming-switchover", Waves: waves}},
		{Time: at(0), Event: fleet.EventClusterSkipped, Cluster: "c3", Wave: "rest", State: fleet.StateSkipped,
			Reason: "refused by the plan (--skip-refused): replication lag 12 MB on every standby, over max_lag_bytes 1 MB; no candidate is ready (pg2: lag 12 MB, pg3: lag 14 MB)"},
		{Time: at(1), Event: fleet.EventWaveStarted, Wave: "canary"},
		{Time: at(1), Event: fleet.EventClusterStarting, Cluster: "c1", Wave: "canary", Mode: fleet.ModeRun, Attempt: 1},
		{Time: at(2), Event: fleet.EventClusterStarted, Cluster: "c1", Wave: "canary", RunID: "20260314T220002-c1"},
		{Time: at(40), Event: fleet.EventClusterFinished, Cluster: "c1", Wave: "canary", State: fleet.StateDone,
			Outcome: done("20260314T220002-c1", "pg1", "pg2", 1234.5, 0, 0, 38000)},
		{Time: at(41), Event: fleet.EventWaveStarted, Wave: "rest"},
		{Time: at(41), Event: fleet.EventClusterStarting, Cluster: "c2", Wave: "rest", Mode: fleet.ModeRun, Attempt: 1},
		{Time: at(41), Event: fleet.EventClusterStarting, Cluster: "c4", Wave: "rest", Mode: fleet.ModeRun, Attempt: 1},
		{Time: at(42), Event: fleet.EventClusterStarted, Cluster: "c4", Wave: "rest", RunID: "20260314T220042-c4"},
		{Time: at(42), Event: fleet.EventClusterStarted, Cluster: "c2", Wave: "rest", RunID: "20260314T220042-c2"},
		{Time: at(80), Event: fleet.EventClusterFinished, Cluster: "c4", Wave: "rest", State: fleet.StateDone,
			Outcome: done("20260314T220042-c4", "db-a1", "db-a2", 4321, 0, 3, 39000)},
		{Time: at(80), Event: fleet.EventHalted, Cluster: "c4", Wave: "rest",
			Reason: "clients could not write for 4.321s, over halt.window_over 3s"},
		{Time: at(85), Event: fleet.EventClusterFinished, Cluster: "c2", Wave: "rest", State: fleet.StateDone,
			Outcome: done("20260314T220042-c2", "pg1", "pg3", 987, 0, 0, 43000)},
		{Time: at(85), Event: fleet.EventFleetFinished, Result: fleet.ResultHalted, Left: []string{"c5"}},
	}
	for i := range recs {
		recs[i].Seq, recs[i].FleetRun, recs[i].Fleet = i+1, id, "patch"
	}
	return recs
}

func haltedFleet() *fleet.Fleet {
	return &fleet.Fleet{Name: "patch", File: "/srv/fleets/patch.yaml", Digest: "4f2a9c", Playbook: "postgres-streaming-switchover",
		Limits: fleet.Limits{Max: 2, PerLabel: map[string]int{"dc": 1}},
		Halt:   fleet.HaltRules{LostCommits: 0, WindowOver: 3 * time.Second, ClientErrorsOver: ptr(int64(10))}}
}

// The fleet report of a halted fleet with a skipped cluster, in Markdown
// (with and without the chart beside it), HTML and SVG, against golden
// files.
func TestFleetReportGolden(t *testing.T) {
	t.Parallel()
	rep := fleet.BuildReport(haltedFleet(), "20260314T220000", haltedFleetRecords("20260314T220000"))
	var md, mdChart, page, svg strings.Builder
	writeFleetMarkdown(&md, rep, "")
	writeFleetMarkdown(&mdChart, rep, "patch.svg")
	if err := writeFleetHTML(&page, rep); err != nil {
		t.Fatal(err)
	}
	writeFleetSVG(&svg, rep)
	golden(t, "testdata/fleet_report.md", md.String())
	golden(t, "testdata/fleet_report_chart.md", mdChart.String())
	golden(t, "testdata/fleet_report.html", page.String())
	golden(t, "testdata/fleet_report.svg", svg.String())

	// Figures and reasons are never cut.
	for _, want := range []string{"no candidate is ready (pg2: lag 12 MB, pg3: lag 14 MB)", "4.321s", "20260314T220042-c4",
		"halted by c4", "min 987ms, median 1.235s, max 4.321s (3 runs measured)", "halt: window_over 3s"} {
		if !strings.Contains(md.String()+svg.String(), want) {
			t.Errorf("want %q in the report", want)
		}
	}
	// The chart draws the clusters in the order they ran: c1, c2, c4.
	if i1, i2, i4 := strings.Index(svg.String(), ">c1<"), strings.Index(svg.String(), ">c2<"), strings.Index(svg.String(), ">c4<"); !(i1 < i2 && i2 < i4) {
		t.Errorf("bars not in the order the clusters ran:\n%s", svg.String())
	}
}

// Every text in the chart and the page is escaped: a cluster or fleet
// named with markup stays text.
func TestFleetReportEscapes(t *testing.T) {
	t.Parallel()
	recs := haltedFleetRecords("r1")
	for i := range recs {
		if recs[i].Cluster == "c4" {
			recs[i].Cluster = `<b onload="x">&c4`
		}
		if s := recs[i].Start; s != nil {
			s.Waves[1].Clusters[2] = `<b onload="x">&c4`
		}
	}
	f := haltedFleet()
	f.Name = `pa<tch>`
	rep := fleet.BuildReport(f, "r1", recs)
	var page, svg strings.Builder
	if err := writeFleetHTML(&page, rep); err != nil {
		t.Fatal(err)
	}
	writeFleetSVG(&svg, rep)
	for name, s := range map[string]string{"html": page.String(), "svg": svg.String()} {
		if strings.Contains(s, "<b onload") || strings.Contains(s, "pa<tch>") {
			t.Errorf("%s: markup not escaped:\n%s", name, s)
		}
	}
}

// A fleet that never ran any cluster still has a report and a chart.
func TestFleetReportNothingRan(t *testing.T) {
	t.Parallel()
	recs := haltedFleetRecords("r1")[:2]
	rep := fleet.BuildReport(haltedFleet(), "r1", recs)
	var md, svg strings.Builder
	writeFleetMarkdown(&md, rep, "")
	writeFleetSVG(&svg, rep)
	for _, want := range []string{"not yet", "client window: not measured by any run", "| rest   | c5      | pending"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("want %q in:\n%s", want, md.String())
		}
	}
	if !strings.Contains(svg.String(), "no cluster ran") {
		t.Errorf("want the empty chart to say so:\n%s", svg.String())
	}
}

// fleet report reads the fleet's last run from its journal, or
// --fleet-run ID, and writes the Markdown with the chart beside it (-o)
// or the HTML page.
func TestFleetReportCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	inv := filepath.Join(dir, "c1.yaml")
	writeFile(t, inv, "cluster: c1\nnodes:\n  pg1: {conninfo: \"host=127.0.0.1 port=1\"}\n")
	path := filepath.Join(dir, "fleet.yaml")
	writeFile(t, path, "fleet: patch\nplaybook: postgres-streaming-switchover\nclusters:\n  - inventory: c1.yaml\n")
	code, _, errOut := executeT(t, "fleet", "report", path, "--journal-dir", dir)
	if code != exitUsage || !strings.Contains(errOut, "has no run in") {
		t.Fatalf("no run: exit %d: %s", code, errOut)
	}
	fdir := fleet.Dir(dir, "patch")
	if err := os.MkdirAll(fdir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"20260314T220000", "20260401T220000"} {
		var b strings.Builder
		for _, r := range haltedFleetRecords(id) {
			line, _ := json.Marshal(r)
			b.Write(append(line, '\n'))
		}
		writeFile(t, filepath.Join(fdir, id+".jsonl"), b.String())
	}
	code, out, errOut := executeT(t, "fleet", "report", path, "--journal-dir", dir)
	if code != 0 || !strings.Contains(out, "# Fleet patch: run 20260401T220000") || !strings.Contains(out, "file has changed since") {
		t.Fatalf("exit %d:\n%s%s", code, out, errOut)
	}
	md := filepath.Join(dir, "ticket.md")
	code, out, errOut = executeT(t, "fleet", "report", path, "--journal-dir", dir, "--fleet-run", "20260314T220000", "-o", md)
	if code != 0 || !strings.Contains(out, filepath.Join(dir, "ticket.svg")) {
		t.Fatalf("-o: exit %d:\n%s%s", code, out, errOut)
	}
	b, err := os.ReadFile(md)
	if err != nil || !strings.Contains(string(b), "run 20260314T220000") || !strings.Contains(string(b), "](ticket.svg)") {
		t.Fatalf("%s: %v\n%s", md, err, b)
	}
	if _, err := os.Stat(filepath.Join(dir, "ticket.svg")); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = executeT(t, "fleet", "report", path, "--journal-dir", dir, "--format", "html")
	if code != 0 || !strings.HasPrefix(out, "<!DOCTYPE html>") || !strings.Contains(out, "<svg ") {
		t.Fatalf("html: exit %d:\n%s%s", code, out, errOut)
	}
	code, _, errOut = executeT(t, "fleet", "report", path, "--journal-dir", dir, "--fleet-run", "nope")
	if code != exitUsage || !strings.Contains(errOut, "has no run nope") {
		t.Fatalf("--fleet-run nope: exit %d: %s", code, errOut)
	}
}
