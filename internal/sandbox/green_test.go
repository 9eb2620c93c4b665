package sandbox_test

import (
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/runbook/spec"
)

// TestGreenSandbox: `sandbox up --green` brings up green1 beside the usual
// cluster: it answers, is a cluster of its own and empty but for blue's
// databases, every server runs with wal_level = logical, the inventory
// has the green: section, and down stops green with the rest, leaving no
// process and no directory.
func TestGreenSandbox(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.NewGreen(t, 1, "")
	g := sandboxtest.Node(t, sb, sandbox.GreenNode)
	if sb.Green == nil || g.Port == sb.Nodes[len(sb.Nodes)-1].Port || g.DataDir == "" {
		t.Fatalf("green = %+v, want a server of its own", sb.Green)
	}
	if got := sandboxtest.Query(t, sb, sandbox.GreenNode, "SELECT pg_is_in_recovery()::text"); got != "false" {
		t.Errorf("green1 in recovery: %s, want a primary of its own", got)
	}
	blueID := sandboxtest.Query(t, sb, "pg1", "SELECT system_identifier::text FROM pg_control_system()")
	if greenID := sandboxtest.Query(t, sb, sandbox.GreenNode, "SELECT system_identifier::text FROM pg_control_system()"); greenID == blueID {
		t.Errorf("green1 has blue's system identifier %s: not a cluster of its own", blueID)
	}
	if got := sandboxtest.Query(t, sb, sandbox.GreenNode, "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database WHERE NOT datistemplate"); got != "app,postgres" {
		t.Errorf("green1's databases: %s, want blue's: app,postgres", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pg.Connect(ctx, sb.GreenConninfo("app"), 5*time.Second)
	if err != nil {
		t.Fatalf("connect to green's app: %v", err)
	}
	var tables int
	err = conn.QueryRow(ctx, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'").Scan(&tables)
	conn.Close(context.Background())
	if err != nil || tables != 0 {
		t.Errorf("green1's app holds %d relations (%v), want none", tables, err)
	}
	for _, name := range []string{"pg1", "pg2", sandbox.GreenNode} {
		if got := sandboxtest.Query(t, sb, name, "SHOW wal_level"); got != "logical" {
			t.Errorf("%s: wal_level = %s, want logical", name, got)
		}
		for setting, least := range map[string]int{"max_replication_slots": 4, "max_wal_senders": 4, "max_logical_replication_workers": 4, "max_worker_processes": 8} {
			v, _ := strconv.Atoi(sandboxtest.Query(t, sb, name, "SHOW "+setting))
			if v < least {
				t.Errorf("%s: %s = %d, want %d or more for a forward and a reverse subscription", name, setting, v, least)
			}
		}
	}
	src, err := os.ReadFile(sb.Inventory())
	if err != nil {
		t.Fatal(err)
	}
	inv, err := spec.LoadInventory(sb.Inventory(), src)
	if err != nil {
		t.Fatalf("the sandbox's inventory:\n%s\n%v", src, err)
	}
	if inv.Cluster.Green == nil || inv.Cluster.Green.Nodes[sandbox.GreenNode] == nil || inv.Cluster.Green.Nodes[sandbox.GreenNode].Conninfo != sb.GreenConninfo("app") {
		t.Errorf("the inventory's green: %+v, want green1 at %s", inv.Cluster.Green, sb.GreenConninfo("app"))
	}
	if c := sb.Cluster(); c.Green == nil || c.Green.Nodes[sandbox.GreenNode] == nil || len(c.NodeOrder()) != 2 {
		t.Errorf("Cluster(): green %+v, blue %v", c.Green, c.NodeOrder())
	}
	var statusGreen bool
	for _, st := range sb.Status(ctx) {
		if st.Node.Name == sandbox.GreenNode {
			statusGreen = st.Green && st.Running && st.Err == nil
		}
	}
	if !statusGreen {
		t.Error("Status does not show green1 running")
	}

	pids := sb.PIDs()
	if pids[sandbox.GreenNode] == 0 {
		t.Fatalf("PIDs = %v, want green1's", pids)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), time.Minute)
	defer dcancel()
	if err := sb.Down(dctx); err != nil {
		t.Fatalf("down: %v", err)
	}
	for name, pid := range pids {
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); err == nil && strings.Contains(string(b), sb.Dir) {
			t.Errorf("%s (pid %d) still runs after down", name, pid)
		}
	}
	if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(g.Port)), time.Second); err == nil {
		c.Close()
		t.Errorf("something still listens on green's port %d", g.Port)
	}
	if _, err := os.Stat(sb.Dir); !os.IsNotExist(err) {
		t.Errorf("%s is still there after down (%v)", sb.Dir, err)
	}
}

// TestGreenOptionsRefused: what --green cannot go with is refused before
// anything is created.
func TestGreenOptionsRefused(t *testing.T) {
	t.Parallel()
	for name, o := range map[string]sandbox.Options{
		"green-bin-dir without green":    {GreenBinDir: "/usr/lib/postgresql/17/bin"},
		"a green bin dir without initdb": {Green: true, GreenBinDir: t.TempDir()},
	} {
		o.Dir = t.TempDir() + "/sb"
		_, err := sandbox.Up(context.Background(), o)
		if err == nil || !strings.Contains(err.Error(), "--green-bin-dir") {
			t.Errorf("%s: %v, want a refusal naming --green-bin-dir", name, err)
		}
		if _, serr := os.Stat(o.Dir); !os.IsNotExist(serr) {
			t.Errorf("%s: %s was created", name, o.Dir)
		}
	}
}
