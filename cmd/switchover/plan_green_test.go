package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/internal/transport"
)

// TestPlanGreenSandbox: plan on a sandbox with a green server shows blue's
// nodes and green's with their major version, in text and JSON, while the
// streaming playbook's checks still look at blue only (green is a primary
// of another cluster: they would refuse it); with green stopped, its
// version comes from its bin_dir.
func TestPlanGreenSandbox(t *testing.T) {
	sb := sandboxtest.NewGreen(t, 1, "")
	v, _ := strconv.Atoi(sandboxtest.Query(t, sb, "pg1", "SHOW server_version_num"))
	major := v / 10000
	jd := filepath.Join(t.TempDir(), "journal")
	plan := func(args ...string) string {
		t.Helper()
		code, out, errOut := executeT(t, append([]string{"plan", "postgres-streaming-switchover", "-i", sb.Inventory(), "--journal-dir", jd}, args...)...)
		if code != 0 {
			t.Fatalf("plan %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	out := plan()
	blue := fmt.Sprintf("blue (sandbox):        pg1 PostgreSQL %d, pg2 PostgreSQL %d\n", major, major)
	green := fmt.Sprintf("green (sandbox-green): green1 PostgreSQL %d\n", major)
	if !strings.Contains(out, blue) || !strings.Contains(out, green) || strings.Contains(out, "major upgrade") {
		t.Errorf("plan:\n%s\nwant the lines\n%s%sand no major upgrade", out, blue, green)
	}
	out = plan("--log-format", "json")
	if !strings.Contains(out, `"event":"clusters"`) || !strings.Contains(out, `{"node":"green1","major_version":`+strconv.Itoa(major)+`,"from":"server"}`) {
		t.Errorf("plan --log-format json has no clusters event with green1:\n%s", out)
	}

	g, _ := sb.Node(sandbox.GreenNode)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stop := fmt.Sprintf("%s stop -D %s -m fast -w -t 50", transport.ShellQuote(filepath.Join(sb.GreenBinDir, "pg_ctl")), transport.ShellQuote(g.DataDir))
	if r, err := sandboxtest.Shell(sb).Run(ctx, stop); err != nil || r.ExitCode != 0 {
		t.Fatalf("stop green1: %v %s", err, r.Combined())
	}
	out = plan()
	if want := fmt.Sprintf("green1 PostgreSQL %d (its bin_dir's; the server did not answer)", major); !strings.Contains(out, want) {
		t.Errorf("plan with green1 stopped:\n%s\nwant %s", out, want)
	}
}
