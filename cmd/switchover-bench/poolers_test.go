package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// TestTwoPoolersRow runs the benchmark's two-PgBouncer row, one round trip,
// and checks what it measured: both writers committed, nothing was lost,
// no client saw an error, and the last line carries the row. It brings up
// a sandbox of its own, so it runs only with SWITCHOVER_FULL=1.
func TestTwoPoolersRow(t *testing.T) {
	if os.Getenv("SWITCHOVER_FULL") == "" {
		t.Skip("SWITCHOVER_FULL=1 runs the two-PgBouncer row of the benchmark")
	}
	rb, err := loadPlaybook(Playbook)
	if err != nil {
		t.Fatal(err)
	}
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
	b := &bench{o: Options{Runs: 1}, out: &out, log: &out, work: work, journal: t.TempDir(), rb: rb}
	t.Cleanup(func() {
		if err := b.down(); err != nil {
			t.Error(err)
		}
		os.RemoveAll(work)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := b.twoPoolers(ctx)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Logf("\n%s", out.String())
	if len(res.rows) != 2 || res.Lost != 0 || res.ClientErrors != 0 {
		t.Errorf("two poolers: %d switchovers, %d lost, %d client errors; want 2, none lost, no error", len(res.rows), res.Lost, res.ClientErrors)
	}
	for _, s := range res.rows {
		if s.acked == 0 || s.windowMS <= 0 || !strings.Contains(s.endpoint, "pooler") {
			t.Errorf("%s -> %s: %d acknowledged, window %v ms, canary through %q", s.from, s.to, s.acked, s.windowMS, s.endpoint)
		}
	}
	var sum bytes.Buffer
	if err := report(&sum, 1, nil, nil, nil, nil, nil, "", res); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(sum.String()), "\n")
	var last struct {
		TwoPoolers *modeResult `json:"two_poolers"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.TwoPoolers == nil || last.TwoPoolers.Window.Max <= 0 {
		t.Errorf("the last line has no two_poolers figures (%v):\n%s", err, sum.String())
	}
	t.Logf("\n%s", sum.String())
}
