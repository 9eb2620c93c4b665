package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/integration"
)

// logicalRow is a logical cutover as measure would read it, with the time
// of two of its held steps.
func logicalRow(window float64, errors, lost int, fence, repoint float64) *switchover {
	return &switchover{mode: modeLogical, from: "pg1", to: "green1", windowMS: window, errors: errors, lost: lost, acked: 40,
		timing: timing{totalMS: 900, steps: map[string]float64{"preflight": 300, "pause-pooler": 200, "fence-from": fence, "repoint-pooler": repoint},
			order:  []string{"preflight", "pause-pooler", "fence-from", "repoint-pooler"},
			phases: map[string]phaseTimes{"pause-pooler": {checks: 190, action: 10}, "fence-from": {action: fence}}}}
}

// TestLogicalResult: the logical cutovers' figures are the window's min,
// median and max, the errors and lost commits summed, the medians of the
// steps clients are held through (the preflight left out), and the last
// line carries them as "logical_cutover"; the summary says whether the
// goal is met.
func TestLogicalResult(t *testing.T) {
	t.Parallel()
	r := &logicalResult{rows: []*switchover{logicalRow(120, 0, 0, 10, 8), logicalRow(300, 0, 0, 14, 12), logicalRow(180, 0, 0, 12, 9)}}
	r.tally()
	if r.Window != (spread{120, 180, 300}) || r.ClientErrors != 0 || r.Lost != 0 {
		t.Errorf("figures %+v", r.modeResult)
	}
	if _, ok := r.Steps["preflight"]; ok || r.Steps["fence-from"].Median != 12 || r.Steps["repoint-pooler"].Median != 9 || r.Steps["pause-pooler"].Median != 10 {
		t.Errorf("held steps %+v", r.Steps)
	}
	var out bytes.Buffer
	if err := report(&out, 1, nil, nil, nil, nil, nil, "", r); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var last struct {
		LogicalCutover *struct {
			Window       spread         `json:"window_ms"`
			ClientErrors int            `json:"client_errors"`
			Lost         int            `json:"lost"`
			Steps        map[string]med `json:"held_steps_ms"`
		} `json:"logical_cutover"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.LogicalCutover == nil {
		t.Fatalf("the last line has no logical_cutover (%v):\n%s", err, out.String())
	}
	if l := last.LogicalCutover; l.Window.Median != 180 || l.Window.Max != 300 || l.Steps["fence-from"].Median != 12 {
		t.Errorf("logical_cutover %+v", *l)
	}
	if !strings.Contains(out.String(), "goal: clients held under 1000 ms (median) with 0 client errors and 0 lost: met") {
		t.Errorf("the summary does not say the goal is met:\n%s", out.String())
	}

	r = &logicalResult{rows: []*switchover{logicalRow(120, 1, 0, 10, 8)}}
	r.tally()
	out.Reset()
	r.summary(&out, 1)
	if !strings.Contains(out.String(), "NOT met") {
		t.Errorf("a client error does not fail the goal:\n%s", out.String())
	}
	// Without the row, the last line says null.
	out.Reset()
	if err := report(&out, 1, nil, nil, nil, nil, nil, ""); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"logical_cutover":null`) {
		t.Errorf("no logical_cutover null in:\n%s", out.String())
	}
}

// TestLogicalRow runs the benchmark's logical cutover row, one round trip
// pg1 -> green1 -> pg1, on a sandbox with green1: both cutovers measured
// through PgBouncer, nothing lost, no client error, every held step timed.
func TestLogicalRow(t *testing.T) {
	integration.Need(t)
	var out bytes.Buffer
	// Not t.TempDir(): its parent is private to us, and the servers run
	// as another user when we are root.
	work, err := os.MkdirTemp("", "switchover-bench-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(work, 0o755); err != nil {
		t.Fatal(err)
	}
	b := &bench{o: Options{Runs: 1}, out: &out, log: &out, work: work, journal: t.TempDir()}
	t.Cleanup(func() {
		if err := b.down(); err != nil {
			t.Error(err)
		}
		os.RemoveAll(work)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := b.logical(ctx)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	var sum bytes.Buffer
	res.summary(&sum, 1)
	t.Logf("\n%s\n%s", out.String(), sum.String())
	if len(res.rows) != 2 || res.Lost != 0 || res.ClientErrors != 0 {
		t.Errorf("logical cutover: %d cutovers, %d lost, %d client errors; want 2, none lost, no error", len(res.rows), res.Lost, res.ClientErrors)
	}
	for _, s := range res.rows {
		if s.acked == 0 || s.windowMS <= 0 || !strings.Contains(s.endpoint, "pooler") {
			t.Errorf("%s -> %s: %d acknowledged, window %v ms, canary through %q", s.from, s.to, s.acked, s.windowMS, s.endpoint)
		}
	}
	for _, name := range logicalHeld {
		if _, ok := res.Steps[name]; !ok {
			t.Errorf("held step %s not timed: %v", name, res.Steps)
		}
	}
}
