package journal

import (
	"bytes"
	"os"
	"testing"
)

// syncCounter is a journal file that counts its syncs.
type syncCounter struct {
	*os.File
	syncs int
}

func (s *syncCounter) Sync() error { s.syncs++; return s.File.Sync() }

// TestOnlyTransitionsWaitForTheDisk: the events a resume acts on are
// synced as they are written; the others (checks, output lines, effects,
// approvals, a step done) are written at once and reach the disk with the
// next transition, always before the next action; Close syncs what is
// left. Every event is in the file either way.
func TestOnlyTransitionsWaitForTheDisk(t *testing.T) {
	dir := t.TempDir()
	var f *syncCounter
	orig := OpenFile
	OpenFile = func(path string, flag int) (File, error) {
		of, err := os.OpenFile(path, flag, 0o600)
		if err != nil {
			return nil, err
		}
		f = &syncCounter{File: of}
		return f, nil
	}
	t.Cleanup(func() { OpenFile = orig })
	j, err := Create(dir, "20261207T000000Z-000000")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		e    Event
		sync bool
	}{
		{Event{Type: EventRunStarted}, true},
		{Event{Type: EventStep, Step: "stop", State: StateChecking}, false},
		{Event{Type: EventCheck, Step: "stop"}, false},
		{Event{Type: EventApproval, Step: "stop"}, false},
		{Event{Type: EventEffect, Step: "stop"}, false},
		{Event{Type: EventStep, Step: "stop", State: StateRunning}, true},
		{Event{Type: EventOutput, Step: "stop", Output: "a line"}, false},
		{Event{Type: EventFact, Step: "stop"}, true},
		{Event{Type: EventStep, Step: "stop", State: StateVerifying}, false},
		{Event{Type: EventStep, Step: "stop", State: StateDone}, false},
		{Event{Type: EventNote}, false},
		{Event{Type: EventSection}, true},
		{Event{Type: EventRunFinished}, true},
	} {
		before := f.syncs
		if err := j.Append(c.e); err != nil {
			t.Fatal(err)
		}
		if synced := f.syncs > before; synced != c.sync {
			t.Errorf("%s %s: synced %v, want %v", c.e.Type, c.e.State, synced, c.sync)
		}
	}
	if err := j.Append(Event{Type: EventNote, Message: "after the end"}); err != nil {
		t.Fatal(err)
	}
	before := f.syncs
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if f.syncs != before+1 {
		t.Errorf("Close synced %d times, want once", f.syncs-before)
	}
	b, err := os.ReadFile(JournalPath(dir, "20261207T000000Z-000000"))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(b, []byte("\n")); n != 14 {
		t.Errorf("the journal holds %d events, want all 14", n)
	}
}
