package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/fleet"
)

// At a terminal the running clusters are a block under the lines: each
// line erases the block, is written, and the block is drawn again with
// each cluster's step and elapsed time; a finished cluster leaves it.
func TestFleetLiveBlock(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	v, err := newFleetView(&out, "human", &fleet.Fleet{Name: "patch"})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 14, 22, 0, 0, 0, time.UTC)
	now := t0
	v.live = newFleetLive(v.w, 60)
	v.live.now = func() time.Time { return now }

	v.Observe(fleet.Record{Time: t0, Event: fleet.EventClusterStarting, Cluster: "c1", Mode: fleet.ModeRun, Attempt: 1})
	v.Observe(fleet.Record{Time: t0, Event: fleet.EventClusterStarting, Cluster: "c2", Mode: fleet.ModeRun, Attempt: 1})
	now = t0.Add(12300 * time.Millisecond)
	out.Reset()
	v.Observe(fleet.Record{Time: now, Event: "cluster.step", Cluster: "c2", Step: "promote"})
	got := out.String()
	if !strings.HasPrefix(got, "\x1b[3A\x1b[J") {
		t.Errorf("the block of 3 lines is not erased first: %q", got)
	}
	flat := strings.Join(strings.Fields(got), " ")
	for _, want := range []string{"running 2: STEP ELAPSED c1 - 12.3s c2 promote 12.3s"} {
		if !strings.Contains(flat, want) {
			t.Errorf("want %q in %q", want, got)
		}
	}
	if strings.Contains(got, "step promote") {
		t.Errorf("a step is a line of its own: %q", got)
	}
	out.Reset()
	ms := 800.0
	v.Observe(fleet.Record{Time: now, Event: fleet.EventClusterFinished, Cluster: "c1", State: fleet.StateDone,
		Outcome: &fleet.Outcome{Status: "done", Figures: fleet.Figures{WindowMS: &ms}}})
	got = out.String()
	if !strings.HasPrefix(got, "\x1b[3A\x1b[J") || !strings.Contains(got, "c1: done") || !strings.Contains(got, "running 1:") || strings.Contains(got, "  c1 ") {
		t.Errorf("after c1 finished: %q", got)
	}
	out.Reset()
	v.Observe(fleet.Record{Time: now, Event: fleet.EventClusterFinished, Cluster: "c2", State: fleet.StateDone, Outcome: &fleet.Outcome{Status: "done"}})
	if got = out.String(); strings.Contains(got, "running") || !strings.HasPrefix(got, "\x1b[2A\x1b[J") {
		t.Errorf("with none running the block goes: %q", got)
	}
}

// A line longer than the terminal is cut, so that the block's lines are
// the lines on the screen.
func TestFleetLiveCut(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	l := newFleetLive(&out, 40)
	l.observe(fleet.Record{Time: time.Now(), Event: fleet.EventClusterStarting, Cluster: strings.Repeat("c", 80)})
	l.draw()
	for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		if n := len([]rune(line)); n > 39 {
			t.Errorf("line of %d columns: %q", n, line)
		}
	}
	if l.drawn != 2 {
		t.Errorf("drawn %d, want 2", l.drawn)
	}
}

// Without a terminal nothing changes: no block, no escape sequence.
func TestFleetLiveNotATerminal(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	v, err := newFleetView(&out, "human", &fleet.Fleet{Name: "patch"})
	if err != nil {
		t.Fatal(err)
	}
	stop := v.startLive(&out)
	v.Observe(fleet.Record{Time: time.Now(), Event: fleet.EventClusterStarting, Cluster: "c1", Mode: fleet.ModeRun, Attempt: 1})
	stop()
	if v.live != nil || strings.Contains(out.String(), "\x1b[") || strings.Contains(out.String(), "running") {
		t.Errorf("a block without a terminal: %q", out.String())
	}
}
