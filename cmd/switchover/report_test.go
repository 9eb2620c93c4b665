package main

// Tests of `switchover report`: usage, the choice of run, and the report of
// a real switchover on a sandbox cluster, compared with a golden file
// after the parts that vary from run to run are replaced by placeholders.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/runbook"
	"github.com/switchover/switchover/runbook/journal"
)

func TestReportUsage(t *testing.T) {
	t.Parallel()
	empty := t.TempDir()
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"bad format", []string{"report", "--format", "xml", "--journal-dir", empty}, `--format "xml": want markdown, json, html or svg`},
		{"out with a format", []string{"report", "--out", "r.md", "--format", "json", "--journal-dir", empty}, "it takes no --format"},
		{"two ids", []string{"report", "a", "b", "--journal-dir", empty}, "want at most one RUN_ID, got 2"},
		{"no runs", []string{"report", "--journal-dir", empty}, "no runs in " + empty},
		{"no such run", []string{"report", "20260101T000000Z-000000", "--journal-dir", empty}, `no run "20260101T000000Z-000000"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := executeT(t, tt.args...)
			if code != exitUsage || !strings.Contains(errOut, tt.wantErr) || out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q: want exit %d and %q", code, out, errOut, exitUsage, tt.wantErr)
			}
		})
	}
}

// TestReportChoosesTheRun: without RUN_ID, the newest run; with one, that
// run. Needs no PostgreSQL.
func TestReportChoosesTheRun(t *testing.T) {
	t.Parallel()
	work, jdir := t.TempDir(), t.TempDir()
	file := filepath.Join(work, "cli.yaml")
	writeFile(t, file, strings.Replace(cliRunbook, "/nonexistent", work, 1))
	var ids []string
	for i := 0; i < 2; i++ {
		code, out, errOut := executeT(t, "run", file, "--yes", "--journal-dir", jdir)
		if code != exitOK {
			t.Fatalf("run: exit %d\n%s%s", code, out, errOut)
		}
		runs, err := runbook.ListRuns(jdir)
		if err != nil || len(runs) != i+1 {
			t.Fatalf("ListRuns: %v, %v", runs, err)
		}
		ids = append(ids, runs[0].ID)
	}
	for _, tt := range []struct{ args []string }{{nil}, {[]string{ids[0]}}, {[]string{ids[1]}}} {
		want := ids[1]
		if len(tt.args) > 0 {
			want = tt.args[0]
		}
		args := append([]string{"report", "--journal-dir", jdir, "--format", "json"}, tt.args...)
		code, out, errOut := executeT(t, args...)
		if code != exitOK {
			t.Fatalf("%v: exit %d\n%s", args, code, errOut)
		}
		var r journal.Report
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		if r.RunID != want || r.Outcome != journal.OutcomeDone || len(r.Steps) != 2 || r.Steps[1].Name != "second" ||
			len(r.Steps[1].Approvals) != 1 || r.Steps[1].Approvals[0].How != "--yes" {
			t.Errorf("%v: report of %s, outcome %s, steps %+v: want %s, done, first and second approved with --yes", args, r.RunID, r.Outcome, r.Steps, want)
		}
		if !strings.HasPrefix(out, "{\n  \"run_id\"") {
			t.Errorf("%v: want pretty-printed JSON, got %.40q", args, out)
		}
	}
	code, md, errOut := executeT(t, "report", ids[0], "--journal-dir", jdir)
	if code != exitOK {
		t.Fatalf("report: exit %d\n%s", code, errOut)
	}
	for _, want := range []string{"# Run " + ids[0] + ": cli on runbook-cli\n", "\n## Steps\n", "\n### 2. second — done\n",
		"- approval granted by ", "- action on local at +", "echo two >> " + work + "/log", "\n## Outcome\n\n**done** after "} {
		if !strings.Contains(md, want) {
			t.Errorf("the markdown report has no %q:\n%s", want, md)
		}
	}
}

// switchoverOnSandbox runs the shipped switchover playbook in-process on
// sb with inventory inv, and returns the journal directory.
func switchoverOnSandbox(t *testing.T, inv string) string {
	t.Helper()
	jdir := t.TempDir()
	code, out, errOut := executeT(t, "run", "postgres-streaming-switchover", "-i", inv, "--yes", "--journal-dir", jdir)
	if code != exitOK {
		t.Fatalf("run: exit %d\n--- stdout:\n%s--- stderr:\n%s", code, out, errOut)
	}
	return jdir
}

func reportT(t *testing.T, jdir string, args ...string) string {
	t.Helper()
	code, out, errOut := executeT(t, append([]string{"report", "--journal-dir", jdir}, args...)...)
	if code != exitOK {
		t.Fatalf("report %v: exit %d\n%s", args, code, errOut)
	}
	return out
}

func TestReportOfASandboxSwitchover(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.New(t, 2)
	jdir := switchoverOnSandbox(t, sb.Inventory())
	md := reportT(t, jdir)
	var r journal.Report
	if err := json.Unmarshal([]byte(reportT(t, jdir, "--format", "json")), &r); err != nil {
		t.Fatal(err)
	}
	if r.Outcome != journal.OutcomeDone || r.PointOfNoReturn == nil || !r.PointOfNoReturn.Passed || r.Cluster != "sandbox" {
		t.Errorf("report: outcome %s, point of no return %+v, cluster %s", r.Outcome, r.PointOfNoReturn, r.Cluster)
	}
	golden(t, filepath.Join("testdata", "report_sandbox.golden"), normalizeReport(md, sb, jdir, r.StartedBy))
}

// TestReportKeepsThePasswordOut: a password in the inventory's connection
// string (the sandbox's trust authentication ignores it) appears in
// neither format of the report.
func TestReportKeepsThePasswordOut(t *testing.T) {
	t.Parallel()
	const pw = "s3cr3t-test-pw"
	sb := sandboxtest.New(t, 2)
	src, err := os.ReadFile(sb.Inventory())
	if err != nil {
		t.Fatal(err)
	}
	pg2 := fmt.Sprintf("port=%d user=postgres dbname=postgres", sb.PortBase+2)
	if !strings.Contains(string(src), pg2) {
		t.Fatalf("the sandbox inventory has no %q:\n%s", pg2, src)
	}
	inv := filepath.Join(t.TempDir(), "inventory.yaml")
	writeFile(t, inv, strings.Replace(string(src), pg2, pg2+" password="+pw, 1))
	jdir := switchoverOnSandbox(t, inv)
	for _, format := range []string{"markdown", "json"} {
		out := reportT(t, jdir, "--format", format)
		if strings.Contains(out, pw) {
			t.Errorf("the %s report holds the password:\n%s", format, out)
		}
		if !strings.Contains(out, "promote") {
			t.Errorf("the %s report does not look like one:\n%s", format, out)
		}
	}
}

var (
	reRunID     = regexp.MustCompile(`\b\d{8}T\d{6}Z-[0-9a-f]{6}\b`)
	reStamp     = regexp.MustCompile(`\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} UTC`)
	reRFC3339   = regexp.MustCompile(`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})`)
	reCanaryFig = regexp.MustCompile(`(canary\.(?:acked|errors|window_ms) = |\| commits acknowledged +\| |\| client errors +\| )\d+(\.\d+)?`)
	reDigest    = regexp.MustCompile(`\b[0-9a-f]{64}\b`)
	reLSN       = regexp.MustCompile(`\b[0-9A-F]{1,8}/[0-9A-F]{1,8}\b`)
	reDuration  = regexp.MustCompile(`\b(\d+m\d{2}s|\d+(\.\d+)?(ms|s))\b`)
	reLocalAs   = regexp.MustCompile(`\(local as [^)]*\)`)
	reAttempts  = regexp.MustCompile(`, \d+ attempts`)
	reObserved  = regexp.MustCompile(`(?m)^(\s*- observed: ).*$`)
	reTableFill = regexp.MustCompile(` {2,}`)
	reTableRule = regexp.MustCompile(`-{3,}`)
	reHeldMS    = regexp.MustCompile(`clients held \d+(\.\d+)? ms`)
	reSeries    = regexp.MustCompile(`\(\d+ numbers:`)
)

// normalizeReport replaces what varies between runs and machines (times,
// durations, ids, paths, ports, LSNs, digests, who ran it, what the
// cluster said and printed) by placeholders, and unpads the tables, so
// that what is left is the report's structure.
// reCanaryTable is a run's canary table (its run id lower-cased);
// reSystemID a system identifier recorded as a fact.
var (
	reCanaryTable = regexp.MustCompile(`switchover_canary_\d{8}t\d{6}z_[0-9a-f]+`)
	reSystemID    = regexp.MustCompile(`(system_identifier = |\[ "\$\{1:-\}" != )\d+`)
)

func normalizeReport(md string, sb *sandbox.Sandbox, jdir, startedBy string) string {
	repl := []string{sb.Dir, "SANDBOX", jdir, "JOURNAL", startedBy, "USER@HOST"}
	if sb.BinDir != "" {
		repl = append(repl, sb.BinDir, "PGBIN")
	}
	s := strings.NewReplacer(repl...).Replace(md)
	ports := map[int]string{sb.PortBase: "PORT_PGBOUNCER"}
	for _, n := range sb.Nodes {
		ports[n.Port] = "PORT_" + strings.ToUpper(n.Name)
	}
	nums := make([]int, 0, len(ports))
	for p := range ports {
		nums = append(nums, p)
	}
	sort.Ints(nums)
	for _, p := range nums {
		s = regexp.MustCompile(fmt.Sprintf(`\b%d\b`, p)).ReplaceAllString(s, ports[p])
	}
	s = reRunID.ReplaceAllString(s, "RUN_ID")
	s = reCanaryTable.ReplaceAllString(s, "switchover_canary_RUN_ID")
	s = reSystemID.ReplaceAllString(s, "${1}SYSTEM_ID")
	s = reStamp.ReplaceAllString(s, "TIME")
	s = reRFC3339.ReplaceAllString(s, "TIME")
	s = reCanaryFig.ReplaceAllString(s, "${1}N")
	s = reHeldMS.ReplaceAllString(s, "clients held N ms")
	s = reSeries.ReplaceAllString(s, "(N numbers:")
	s = reDigest.ReplaceAllString(s, "DIGEST")
	s = reLSN.ReplaceAllString(s, "LSN")
	s = reDuration.ReplaceAllString(s, "DUR")
	s = reLocalAs.ReplaceAllString(s, "(local)")
	s = reAttempts.ReplaceAllString(s, "")
	s = reObserved.ReplaceAllString(s, "${1}OBSERVED")
	s = replaceOutput(s)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "|") {
			l = reTableFill.ReplaceAllString(l, " ")
			lines[i] = reTableRule.ReplaceAllString(l, "---")
		}
	}
	return strings.Join(lines, "\n")
}

// replaceOutput replaces the lines an action printed (its fenced block
// after "output:") by one placeholder: they tell timings and versions.
func replaceOutput(s string) string {
	lines := strings.Split(s, "\n")
	var out []string
	for i := 0; i < len(lines); i++ {
		out = append(out, lines[i])
		if strings.TrimSpace(lines[i]) != "output:" {
			continue
		}
		// A blank line, the opening fence, the lines, the closing fence.
		j := i + 1
		for j < len(lines) && strings.TrimSpace(lines[j]) == "" {
			out = append(out, lines[j])
			j++
		}
		if j >= len(lines) {
			break
		}
		fence := lines[j]
		out = append(out, fence)
		indent := fence[:len(fence)-len(strings.TrimLeft(fence, " "))]
		k := j + 1
		for k < len(lines) && lines[k] != fence {
			k++
		}
		out = append(out, indent+"OUTPUT")
		if k < len(lines) {
			out = append(out, lines[k])
		}
		i = k
	}
	return strings.Join(out, "\n")
}
