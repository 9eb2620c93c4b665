package main

// Golden files of the report's answer line, topology and picture (SVG, and
// the HTML page embedding it), from a journal written here: the same
// events every time, no cluster needed.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"
	"github.com/switchover/switchover/steps"
)

// windowJournal is a switchover pg1 → pg2 with a canary, the pooler held
// 300ms and a write gap of 273.2ms inside it, a 4s approval wait.
func windowJournal() []journal.Event {
	start := time.Date(2026, 11, 21, 10, 25, 30, 0, time.UTC)
	var evs []journal.Event
	at := func(msOff int64, e journal.Event) {
		e.Seq, e.Time, e.RunID = len(evs)+1, start.Add(time.Duration(msOff)*time.Millisecond), "20261121T102530Z-3f2a9c"
		evs = append(evs, e)
	}
	names := []string{"preflight", "start-canary", "pause-pooler", "stop-primary", "promote", "resume-pooler", "verify"}
	at(0, journal.Event{Type: journal.EventRunStarted, Run: &journal.RunInfo{RunbookName: "postgres-streaming-switchover",
		Runbook: "playbook:postgres-streaming-switchover", RunbookDigest: "abc", Cluster: "prod-main", User: "dba", Host: "bastion-1",
		Vars: map[string]string{"primary": "pg1", "candidate": "pg2"}, Steps: names, PointOfNoReturn: "promote"}})
	topo := func(primary string, tl int) map[string]any {
		var nodes []any
		for _, n := range []string{"pg1", "pg2", "pg3"} {
			if n == primary {
				nodes = append(nodes, map[string]any{"name": n, "role": "primary", "timeline": float64(tl)})
			} else {
				nodes = append(nodes, map[string]any{"name": n, "role": "standby", "upstream": primary, "streaming": true, "timeline": float64(tl)})
			}
		}
		return map[string]any{"primaries": []any{primary}, "nodes": nodes}
	}
	step := func(msOff int64, name string, st journal.StepState) {
		at(msOff, journal.Event{Type: journal.EventStep, Section: spec.SectionSteps, Step: name, State: st})
	}
	act := func(from, to int64, name, node, cmd string) {
		step(from, name, journal.StateChecking)
		at(from+1, journal.Event{Type: journal.EventEffect, Section: spec.SectionSteps, Step: name, Effect: &steps.Effect{Node: node, Command: cmd}})
		step(from+1, name, journal.StateRunning)
		step(to, name, journal.StateDone)
	}
	step(10, "preflight", journal.StateChecking)
	at(400, journal.Event{Type: journal.EventCheck, Section: spec.SectionSteps, Step: "preflight", Phase: "requires",
		Check: &journal.CheckEvent{Kind: "pg.topology", Describe: "pg1 is the only primary", Status: "pass", Values: topo("pg1", 1)}})
	step(410, "preflight", journal.StateDone)
	// The approval, asked ahead of the first action: its wait is no step's time.
	step(420, "pause-pooler", journal.StateAwaitingApproval)
	at(4420, journal.Event{Type: journal.EventApproval, Section: spec.SectionSteps, Step: "pause-pooler",
		Approval: &journal.Approval{Granted: true, User: "dba", Host: "bastion-1", How: "prompt", Note: "cluster name typed"}})
	act(4430, 4460, "start-canary", "client endpoint", "INSERT a heartbeat every 5ms")
	act(5000, 5010, "pause-pooler", "pgbouncer", "PAUSE app")
	at(5010, journal.Event{Type: journal.EventFact, Step: "pause-pooler", Fact: &journal.Fact{Key: "pgbouncer.paused_by_run", Value: "yes"}})
	act(5011, 5150, "stop-primary", "pg1", "pg_ctl stop -m fast")
	act(5151, 5260, "promote", "pg2", "SELECT pg_promote(wait => false)")
	act(5261, 5310, "resume-pooler", "pgbouncer", "RESUME app")
	at(5310, journal.Event{Type: journal.EventFact, Step: "resume-pooler", Fact: &journal.Fact{Key: "pgbouncer.paused_by_run", Value: "no"}})
	step(5320, "verify", journal.StateChecking)
	at(5900, journal.Event{Type: journal.EventCheck, Section: spec.SectionSteps, Step: "verify", Phase: "requires",
		Check: &journal.CheckEvent{Kind: "pg.topology", Describe: "pg2 is the only primary", Status: "pass", Values: topo("pg2", 2)}})
	step(5910, "verify", journal.StateDone)
	// The canary: 20ms buckets from +4.45s to +6.45s, 4 commits each but
	// for the gap from +5.030s to +5.3032s.
	var counts []string
	for i := 0; i < 100; i++ {
		bucketAt := 4450 + int64(i)*20
		n := 4
		if bucketAt >= 5030 && bucketAt < 5300 {
			n = 0
		}
		counts = append(counts, fmt.Sprint(n))
	}
	fact := func(msOff int64, k, v string) {
		at(msOff, journal.Event{Type: journal.EventFact, Section: spec.SectionFinally, Step: "stop-canary", Fact: &journal.Fact{Key: k, Value: v}})
	}
	step(6450, "stop-canary", journal.StateChecking)
	fact(6460, "canary.endpoint", "the pooler")
	fact(6460, "canary.acked", "1540")
	fact(6460, "canary.errors", "0")
	fact(6460, "canary.window_ms", "273.2")
	fact(6460, "canary.window_from", start.Add(5030*time.Millisecond).Format(time.RFC3339Nano))
	fact(6460, "canary.window_to", start.Add(5303200*time.Microsecond).Format(time.RFC3339Nano))
	fact(6460, "canary.timeline", "start="+start.Add(4450*time.Millisecond).Format(time.RFC3339Nano)+" bucket_ms=20 counts="+strings.Join(counts, ","))
	fact(6470, "canary.lost", "0")
	at(6480, journal.Event{Type: journal.EventStep, Section: spec.SectionFinally, Step: "stop-canary", State: journal.StateDone})
	at(6490, journal.Event{Type: journal.EventRunFinished, Outcome: journal.OutcomeDone, Message: "actions ran: start-canary, pause-pooler, stop-primary, promote, resume-pooler, stop-canary"})
	return evs
}

func TestReportPicture(t *testing.T) {
	t.Parallel()
	r, err := journal.BuildReport(windowJournal(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "pg1 → pg2, timeline 1 → 2, clients held 273.2 ms, 0 lost"; r.Headline != want {
		t.Errorf("headline %q, want %q", r.Headline, want)
	}
	for _, s := range r.Steps {
		if s.Name == "pause-pooler" && (s.StartMS != 5000 || s.DurationMS != 10) {
			t.Errorf("pause-pooler: start %dms, took %dms; want 5000ms and 10ms: the approval asked ahead is not its time", s.StartMS, s.DurationMS)
		}
	}
	var md strings.Builder
	writeMarkdownReport(&md, r, "report.svg")
	text := md.String()
	for _, want := range []string{
		"# Run 20261121T102530Z-3f2a9c: postgres-streaming-switchover on prod-main\n\n**pg1 → pg2, timeline 1 → 2, clients held 273.2 ms, 0 lost**\n\n![the window",
		"| pg1  | primary, timeline 1        | standby of pg2, timeline 2 |",
		"| pg2  | standby of pg1, timeline 1 | primary, timeline 2        |",
		"canary.timeline = (100 numbers",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the markdown report has no %q:\n%s", want, text)
		}
	}
	var svg strings.Builder
	if err := writeWindowSVG(&svg, r); err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join("testdata", "report_window.svg"), svg.String())
	for _, want := range []string{"pooler paused 300ms", "longest write gap 273.2ms", "3 pause-pooler", "5 promote"} {
		if !strings.Contains(svg.String(), want) {
			t.Errorf("the picture has no %q", want)
		}
	}
	var page strings.Builder
	if err := writeHTMLReport(&page, r); err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join("testdata", "report_window.html"), page.String())
	if !strings.Contains(page.String(), svg.String()) {
		t.Error("the HTML report does not embed the picture")
	}
}

// report --out writes the Markdown, the picture and the HTML side by side.
func TestReportOut(t *testing.T) {
	t.Parallel()
	jdir, out := t.TempDir(), t.TempDir()
	evs := windowJournal()
	path := journal.JournalPath(jdir, evs[0].RunID)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	var lines strings.Builder
	for _, e := range evs {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		lines.Write(append(b, '\n'))
	}
	writeFile(t, path, lines.String())
	code, stdout, stderr := executeT(t, "report", "--journal-dir", jdir, "--out", filepath.Join(out, "window.md"))
	if code != exitOK {
		t.Fatalf("report --out: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, f := range []string{"window.md", "window.svg", "window.html"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("report --out: %v", err)
		}
	}
	if !strings.HasPrefix(stdout, "pg1 → pg2, timeline 1 → 2") {
		t.Errorf("report --out said:\n%s", stdout)
	}
}
