package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/runbook/journal"
)

// With --log-format json, an invalid runbook and inventory are reported as
// JSON events, one per problem, with file, line, col and message, the same
// by validate, plan and run, and nothing as text on stderr.
func TestValidationErrorsAsJSONEvents(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rb := filepath.Join(dir, "bad.yaml")
	inv := filepath.Join(dir, "inventory.yaml")
	if err := os.WriteFile(rb, []byte("name: bad\nvars:\n  x: 1\nsteps:\n  - name: a\n    action:\n      exec: {comand: \"echo ${y}\"}\n  - nme: b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(inv, []byte("cluster: c\nnodes:\n  pg1: {conninfo: \"host=127.0.0.1 port=1\", hots: local}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stamp := regexp.MustCompile(`"@timestamp":"[^"]*"`)
	var first string
	for _, args := range [][]string{
		{"validate", rb, "-i", inv, "--log-format", "json"},
		{"plan", rb, "-i", inv, "--log-format", "json", "--journal-dir", t.TempDir()},
		{"run", rb, "-i", inv, "--log-format", "json", "--journal-dir", t.TempDir()},
	} {
		code, out, errOut := executeT(t, args...)
		if code != exitUsage || errOut != "" {
			t.Fatalf("%s: exit %d, stderr %q; want exit 2 and nothing on stderr", args[0], code, errOut)
		}
		for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var ev struct {
				Event   string `json:"event"`
				File    string `json:"file"`
				Line    *int   `json:"line"`
				Col     *int   `json:"col"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.Event != "validation.error" || ev.File == "" || ev.Line == nil || ev.Col == nil || ev.Message == "" {
				t.Fatalf("%s: line %d is not a validation.error event with file, line, col and message: %v\n%s", args[0], i+1, err, line)
			}
		}
		out = strings.ReplaceAll(stamp.ReplaceAllString(out, `"@timestamp":"TIME"`), dir, "DIR")
		if first == "" {
			first = out
			golden(t, filepath.Join("testdata", "validation_events.golden"), out)
		} else if out != first {
			t.Errorf("%s reports the problems differently from validate:\n%s\nwant:\n%s", args[0], out, first)
		}
	}
}

// run.finished as --log-format json prints it: the duration, the new
// primary and the canary's figures are numbers, beside the old fields.
func TestRunFinishedAsJSON(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 22, 2, 0, 1, 234000000, time.UTC)
	i64 := func(n int64) *int64 { return &n }
	gap := 273.2
	var b bytes.Buffer
	jv := newJSONViewAt(&b, func() time.Time { return at })
	jv.Observe(journal.Event{Seq: 42, Time: at, RunID: "20261122T020000Z-1a2b3c", Type: journal.EventRunFinished, Outcome: journal.OutcomeDone,
		Message: "actions ran: checkpoint, promote", DurationMS: i64(1234), NewPrimary: "pg2",
		Canary: &journal.CanaryFigures{Acked: i64(5120), Lost: i64(0), Errors: i64(0), WindowMS: &gap}})
	var ev map[string]any
	if err := json.Unmarshal(b.Bytes(), &ev); err != nil {
		t.Fatal(err)
	}
	c, _ := ev["canary"].(map[string]any)
	if _, ok := ev["duration_ms"].(float64); !ok || ev["new_primary"] != "pg2" || c == nil || c["acked"] != 5120.0 || c["window_ms"] != 273.2 {
		t.Fatalf("run.finished: %s; want duration_ms, new_primary and the canary's figures as numbers", b.String())
	}
	golden(t, filepath.Join("testdata", "run_finished_json.golden"), b.String())
}
