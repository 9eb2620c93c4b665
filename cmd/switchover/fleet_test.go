package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchover/switchover/internal/fleet"
)

// A fleet file with problems runs nothing: every problem with its
// file:line:col, exit 2, as text or as JSON events.
func TestFleetInvalidFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "fleet.yaml")
	src := "fleet: patch\nplaybook: postgres-streaming-switchover\nclusters:\n  - inventory: missing.yaml\nwaves:\n  - {name: canary, clusters: 0}\nconcurency: {max: 2}\n"
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"plan", "run", "resume", "status"} {
		code, out, errOut := executeT(t, "fleet", verb, path, "--journal-dir", dir)
		if code != exitUsage {
			t.Errorf("fleet %s: exit %d, want %d\n%s%s", verb, code, exitUsage, out, errOut)
		}
		for _, want := range []string{
			path + ":4:16: clusters[0]: inventory " + filepath.Join(dir, "missing.yaml") + ": no such file",
			path + ":6:30: waves[0]: clusters: 0: want 1 or more",
			path + ":7:1: fleet file: unknown key \"concurency\" (did you mean \"concurrency\"?)",
		} {
			if !strings.Contains(errOut, want) {
				t.Errorf("fleet %s: want %q in:\n%s", verb, want, errOut)
			}
		}
	}
	code, out, _ := executeT(t, "fleet", "plan", path, "--log-format", "json", "--journal-dir", dir)
	if code != exitUsage {
		t.Fatalf("fleet plan --log-format json: exit %d", code)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("not JSON: %s", line)
		}
		if e["event"] == "validation.error" && e["file"] == path && e["line"] != nil && e["exit_code"] == float64(exitUsage) {
			n++
		}
	}
	if n != 3 {
		t.Errorf("%d validation.error events, want 3:\n%s", n, out)
	}
}

// Without a fleet run to show or resume, status and resume say so (exit 2).
func TestFleetNothingToResume(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	inv := filepath.Join(dir, "c1.yaml")
	if err := os.WriteFile(inv, []byte("cluster: c1\nnodes:\n  pg1: {conninfo: \"host=127.0.0.1 port=1\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(path, []byte("fleet: patch\nplaybook: postgres-streaming-switchover\nclusters:\n  - inventory: c1.yaml\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"status"}, {"resume", "--yes"}} {
		code, out, errOut := executeT(t, append(append([]string{"fleet"}, args[0], path, "--journal-dir", dir), args[1:]...)...)
		if code != exitUsage || !strings.Contains(errOut, "has no run in") {
			t.Errorf("fleet %s: exit %d\n%s%s", args[0], code, out, errOut)
		}
	}
}

func TestFleetExitCodes(t *testing.T) {
	t.Parallel()
	halt := &fleet.Record{Cluster: "c3", Reason: "its run exited 3"}
	for _, tt := range []struct {
		name string
		err  error
		want int
	}{
		{"another fleet process", fleetErr(&fleet.LockedError{Fleet: "patch"}), exitLocked},
		{"an unfinished fleet run", fleetErr(fmt.Errorf("%w: resume it", fleet.ErrUnfinished)), exitLocked},
		{"refused by the plan", fleetErr(fmt.Errorf("%w: c2", fleet.ErrRefused)), exitPrecondition},
		{"outside the window", fleetErr(fmt.Errorf("%w: too early", fleet.ErrWindow)), exitDeclined},
		{"nothing to resume", fleetErr(fmt.Errorf("%w: no run", fleet.ErrNothing)), exitUsage},
		{"the fleet file changed", fleetErr(fmt.Errorf("%w: fleet.yaml", fleet.ErrChanged)), exitUsage},
		{"done", resultErr(&fleet.Result{Result: fleet.ResultDone}), exitOK},
		{"halted", resultErr(&fleet.Result{Result: fleet.ResultHalted, Halt: halt}), exitAction},
		{"failed", resultErr(&fleet.Result{Result: fleet.ResultFailed, Failed: []string{"c1"}}), exitAction},
		{"window ended", resultErr(&fleet.Result{Result: fleet.ResultWindowEnded, Left: []string{"c4"}}), exitDeclined},
		{"interrupted", resultErr(&fleet.Result{Result: fleet.ResultInterrupted}), exitDeclined},
		{"declined", resultErr(&fleet.Result{Result: fleet.ResultDeclined}), exitDeclined},
	} {
		if got := exitCode(tt.err); got != tt.want {
			t.Errorf("%s: exit %d, want %d (%v)", tt.name, got, tt.want, tt.err)
		}
	}
	if err := resultErr(&fleet.Result{Result: fleet.ResultHalted, Halt: halt, Left: []string{"c3", "c4"}}); !strings.Contains(err.Error(), "halted by c3: its run exited 3; left: c3, c4") {
		t.Errorf("halted: %v", err)
	}
}
