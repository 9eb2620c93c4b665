package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/claim"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/internal/transport"
	"github.com/switchover/switchover/runbook"
)

// pgCtl runs pg_ctl VERB on a node of the sandbox, as the servers' user.
func pgCtl(t *testing.T, sb *sandbox.Sandbox, node, verb string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, _ := sb.Node(node)
	cmd := fmt.Sprintf("%s/pg_ctl %s -D %s -w", sb.BinDir, verb, n.DataDir)
	switch verb {
	case "stop":
		cmd += " -m fast"
	case "start":
		cmd += fmt.Sprintf(" -l %s/%s.log", sb.Dir, node)
	}
	if o, err := (transport.Local{User: sb.RunAs}).Run(ctx, cmd); err != nil || o.ExitCode != 0 {
		t.Fatalf("pg_ctl %s %s: %v %s", verb, node, err, o.Combined())
	}
}

// statusUntil runs `status --json` until it exits with want, for at most
// 30 seconds, and returns its output.
func statusUntil(t *testing.T, sb *sandbox.Sandbox, want int) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, out, errOut := executeT(t, "status", "-i", sb.Inventory(), "--json", "--timeout", "5s")
		if code == want {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never exited %d within 30s; last exit %d:\n%s%s", want, code, out, errOut)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The inventory leaves the primary out, and run and plan find it in the
// cluster; a primary given and wrong is refused first, saying which node
// is the primary now, before anything runs. Then status's exit codes on
// the same cluster: 0 healthy, 3 with a standby down, 8 with two
// primaries (a standby promoted beside the primary), 7 with none; plan
// refuses to guess the primary of a cluster with two.
func TestPrimaryFoundAndStatusExitCodes(t *testing.T) {
	sb := sandboxtest.New(t, 1)
	jd := filepath.Join(t.TempDir(), "journal")
	pb := "postgres-streaming-switchover"

	code, out, errOut := executeT(t, "plan", pb, "-i", sb.Inventory(), "--journal-dir", jd)
	if code != 0 || !strings.Contains(errOut, "primary: pg1 (found in the cluster)") {
		t.Fatalf("plan: exit %d, want 0 saying the primary was found\n%s%s", code, out, errOut)
	}
	// The journal keeps the primary as found in the cluster, apart from
	// the --var values: resume runs with it, nobody reads it as typed.
	runs, err := runbook.ListRuns(jd)
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs in %s: %v %v, want the plan's", jd, runs, err)
	}
	rec, err := runbook.ReadRun(jd, runs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if info := rec.Info; !slices.Equal(info.Found, []string{"primary"}) || slices.Contains(info.VarFlags, "primary") || info.Vars["primary"] != "pg1" {
		t.Fatalf("run.started records found_in_cluster %v, var_flags %v, primary %q; want primary found in the cluster, pg1", info.Found, info.VarFlags, info.Vars["primary"])
	}

	code, out, errOut = executeT(t, "run", pb, "-i", sb.Inventory(), "--candidate", "pg1", "--var", "primary=pg2", "--yes", "--journal-dir", jd)
	if code != exitPrecondition || !strings.HasPrefix(errOut, "error: pg1 is the primary now, not pg2") || !strings.Contains(errOut, "nothing was done") {
		t.Fatalf("run with a wrong primary: exit %d\n%s%s\nwant exit 3, saying first that pg1 is the primary now", code, out, errOut)
	}
	if out != "" {
		t.Fatalf("run with a wrong primary started:\n%s", out)
	}

	code, out, errOut = executeT(t, "status", "-i", sb.Inventory(), "--journal-dir", jd)
	if code != 0 || !strings.Contains(out, "health:   healthy (exit 0)") || !strings.Contains(out, "claim:    none in the cluster") ||
		!strings.Contains(out, "lock:     free here") {
		t.Fatalf("status of a healthy cluster: exit %d\n%s%s", code, out, errOut)
	}

	// A run's claim in the cluster, and its lock left in the journal
	// directory by a process that is gone: status names the run in both.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h := claim.Holder{RunID: "claim-test", User: "dba", Host: "ops1", PID: 1, Since: time.Now().UTC()}
	if err := (&claim.Store{Cluster: sb.Cluster()}).Take(ctx, h, "", false); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(h)
	if err := os.MkdirAll(filepath.Join(jd, "locks"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(jd, "locks", "sandbox.lock"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = executeT(t, "status", "-i", sb.Inventory(), "--journal-dir", jd)
	if code != 0 || !strings.Contains(out, "claim:    run claim-test by dba@ops1 (pid 1) since ") || !strings.Contains(out, "seen on pg1") ||
		!strings.Contains(out, "lock:     left by run claim-test by dba@ops1 (pid 1)") {
		t.Fatalf("status with a run's claim and lock: exit %d\n%s%s", code, out, errOut)
	}

	// No primary, as in the middle of another run's switchover: the run
	// that holds the cluster is the answer (exit 6), not the cluster's
	// state of the moment.
	pgCtl(t, sb, "pg1", "stop")
	code, out, errOut = executeT(t, "plan", pb, "-i", sb.Inventory(), "--candidate", "auto", "--journal-dir", t.TempDir())
	if code != exitLocked || !strings.Contains(errOut, `cluster "sandbox" is claimed by run claim-test`) {
		t.Fatalf("plan with no primary while a run holds the cluster: exit %d\n%s%s\nwant exit 6 naming the run", code, out, errOut)
	}
	code, out, errOut = executeT(t, "plan", pb, "-i", sb.Inventory(), "--candidate", "pg2", "--journal-dir", t.TempDir())
	if code != exitLocked || !strings.Contains(errOut, `cluster "sandbox" is claimed by run claim-test`) {
		t.Fatalf("plan --candidate pg2 with no primary while a run holds the cluster: exit %d\n%s%s\nwant exit 6 naming the run", code, out, errOut)
	}
	pgCtl(t, sb, "pg1", "start")
	statusUntil(t, sb, exitOK)

	pgCtl(t, sb, "pg2", "stop")
	code, out, errOut = executeT(t, "status", "-i", sb.Inventory())
	if code != exitPrecondition || !strings.Contains(out, "pg2   unreachable") || !strings.Contains(out, "health:   degraded (exit 3): pg2 does not answer") ||
		!strings.Contains(errOut, "error: cluster degraded: pg2 does not answer") {
		t.Fatalf("status with pg2 stopped: exit %d\n%s%s\nwant exit 3 naming pg2", code, out, errOut)
	}
	pgCtl(t, sb, "pg2", "start")
	statusUntil(t, sb, exitOK)

	pgCtl(t, sb, "pg2", "promote")
	out = statusUntil(t, sb, exitTwoPrimaries)
	var st struct {
		Health   string `json:"health"`
		ExitCode int    `json:"exit_code"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Health != "two_primaries" || st.ExitCode != exitTwoPrimaries {
		t.Fatalf("status --json with two primaries: %v\n%s", err, out)
	}
	code, out, errOut = executeT(t, "plan", pb, "-i", sb.Inventory(), "--journal-dir", jd)
	if code != exitPrecondition || !strings.Contains(errOut, "cannot tell the primary of cluster sandbox: 2 nodes answer as a primary: pg1, pg2") {
		t.Fatalf("plan with two primaries: exit %d\n%s%s\nwant exit 3 saying what it saw", code, out, errOut)
	}

	pgCtl(t, sb, "pg1", "stop")
	pgCtl(t, sb, "pg2", "stop")
	out = statusUntil(t, sb, exitNoPrimary)
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Health != "no_primary" {
		t.Fatalf("status --json with no node up: %v\n%s", err, out)
	}
}

// After pg1 -> pg2, --candidate pg1 alone switches back: the inventory is
// not edited, the primary is found in the cluster. Two switchovers: run
// with SWITCHOVER_FULL=1.
func TestSwitchBackWithoutEditingTheInventory(t *testing.T) {
	if os.Getenv("SWITCHOVER_FULL") == "" {
		t.Skip("two switchovers; SWITCHOVER_FULL=1 runs it")
	}
	sb := sandboxtest.New(t, 1)
	jd := filepath.Join(t.TempDir(), "journal")
	pb := "postgres-streaming-switchover"
	if code, out, errOut := executeT(t, "run", pb, "-i", sb.Inventory(), "--yes", "--journal-dir", jd); code != 0 {
		t.Fatalf("pg1 -> pg2: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut := executeT(t, "plan", pb, "-i", sb.Inventory(), "--candidate", "pg1", "--journal-dir", jd)
	if code != 0 || !strings.Contains(errOut, "primary: pg2 (found in the cluster)") {
		t.Fatalf("plan back: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := executeT(t, "run", pb, "-i", sb.Inventory(), "--candidate", "pg1", "--yes", "--journal-dir", jd); code != 0 {
		t.Fatalf("pg2 -> pg1 with --candidate pg1 alone: exit %d\n%s%s", code, out, errOut)
	}
	var st struct {
		Primaries []string `json:"primaries"`
	}
	if err := json.Unmarshal([]byte(statusUntil(t, sb, 0)), &st); err != nil || len(st.Primaries) != 1 || st.Primaries[0] != "pg1" {
		t.Fatalf("after switching back: primaries %v (%v), want pg1", st.Primaries, err)
	}
}
