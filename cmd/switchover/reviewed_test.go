package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

// A reviewed plan runs as reviewed, and is refused, listing the
// differences, once the cluster's topology or the runbook changed.
func TestReviewedPlan(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	dir := t.TempDir()
	plan := filepath.Join(dir, "plan.json")
	jd := filepath.Join(dir, "journal")
	code, out, errOut := executeT(t, "plan", "postgres-streaming-switchover", "-i", sb.Inventory(), "--journal-dir", jd, "--out", plan)
	if code != 0 || !strings.Contains(out, "plan saved: "+plan) {
		t.Fatalf("plan --out: exit %d\n%s%s", code, out, errOut)
	}
	var rp reviewedPlan
	b, _ := os.ReadFile(plan)
	if err := json.Unmarshal(b, &rp); err != nil || rp.RunbookDigest == "" || len(rp.Topology) != 3 || rp.Topology[0].Role != "primary" {
		t.Fatalf("saved plan %s: %v; want digests and a 3-node topology with pg1 primary", b, err)
	}

	// The topology changes under the plan (a switchover made without it).
	if code, out, errOut := executeT(t, "run", "postgres-streaming-switchover", "-i", sb.Inventory(), "--yes", "--journal-dir", jd); code != 0 {
		t.Fatalf("switchover: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = executeT(t, "run", "--plan", plan, "--yes", "--journal-dir", jd)
	if code != exitPrecondition || !strings.Contains(errOut, "pg1 was primary, is standby") || !strings.Contains(errOut, "pg2 was standby, is primary") || !strings.Contains(errOut, "nothing was done") {
		t.Fatalf("run --plan after the topology changed: exit %d\n%s%s\nwant exit 3 listing the differences", code, out, errOut)
	}
	if strings.Contains(out, "action ") {
		t.Fatalf("run --plan acted although it was refused:\n%s", out)
	}

	// A plan made now runs; one whose variables are changed on the command line is refused.
	code, _, errOut = executeT(t, "plan", "postgres-streaming-switchover", "-i", sb.Inventory(), "--var", "primary=pg2", "--var", "candidate=pg1", "--journal-dir", jd, "--out", plan)
	if code != 0 {
		t.Fatalf("second plan: exit %d: %s", code, errOut)
	}
	if code, _, errOut := executeT(t, "run", "--plan", plan, "--var", "candidate=pg3", "--journal-dir", jd); code != exitUsage || !strings.Contains(errOut, "make a new plan") {
		t.Fatalf("run --plan with a changed variable: exit %d: %s; want exit 2", code, errOut)
	}
	code, out, errOut = executeT(t, "run", "--plan", plan, "--yes", "--journal-dir", jd)
	if code != 0 || !strings.Contains(errOut, "runbook, inventory and topology unchanged") {
		t.Fatalf("run --plan on the cluster as planned: exit %d\n%s%s", code, out, errOut)
	}
}
