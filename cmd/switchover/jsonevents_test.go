package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

// The JSON event stream of a real sandbox switchover: every line is one
// JSON object with the stable fields, and the story it tells (events,
// steps and their states, in order) matches a golden list.
func TestJSONEventsOfASandboxSwitchover(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	code, out, errOut := executeT(t, "run", "postgres-streaming-switchover", "-i", sb.Inventory(), "--yes",
		"--log-format", "json", "--journal-dir", t.TempDir())
	if code != 0 {
		t.Fatalf("run: exit %d\n%s", code, errOut)
	}
	var story []string
	runID := ""
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", i+1, err, line)
		}
		for _, f := range []string{"@timestamp", "@level", "@message", "event", "run_id", "seq"} {
			if _, ok := ev[f]; !ok {
				t.Fatalf("line %d lacks %q: %s", i+1, f, line)
			}
		}
		if runID == "" {
			runID, _ = ev["run_id"].(string)
		} else if ev["run_id"] != runID {
			t.Fatalf("line %d belongs to run %v, not %s", i+1, ev["run_id"], runID)
		}
		kind, _ := ev["event"].(string)
		switch kind {
		case "check.waiting", "action.output", "fact", "note":
			continue // how many depends on timing
		}
		entry := kind
		if s, ok := ev["step"].(string); ok {
			entry += " " + s
		}
		if s, ok := ev["state"].(string); ok {
			entry += " " + s
		}
		if c, ok := ev["check"].(map[string]any); ok {
			entry += fmt.Sprintf(" %v %v", c["kind"], c["status"])
		}
		if o, ok := ev["outcome"].(string); ok {
			entry += " " + o
		}
		story = append(story, entry)
	}
	golden(t, filepath.Join("testdata", "sandbox_events.golden"), strings.Join(story, "\n")+"\n")
}
