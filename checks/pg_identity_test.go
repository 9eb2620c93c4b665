package checks

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/pgbouncer"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

// systemIDOf asks a server for its system identifier.
func systemIDOf(t *testing.T, conninfo string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pg.Connect(ctx, conninfo, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	id, err := pg.SystemIdentifier(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestPGSameCluster runs pg.same_cluster against the shared sandbox and a
// server of a cluster of its own started beside it, with inventories that
// mix the two the ways a slip in an inventory does.
func TestPGSameCluster(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Shared(t)
	other := sandboxtest.Independent(t, sb, "other-samecluster")
	ours := systemIDOf(t, sb.Conninfo(sb.Nodes[0], "postgres"))
	theirs := systemIDOf(t, sb.Conninfo(other, "postgres"))
	if ours == theirs {
		t.Fatalf("two initdbs gave one system identifier %s", ours)
	}
	pg1, pg3 := sandboxNode(t, sb, "pg1"), sandboxNode(t, sb, "pg3")
	closed := closedPort(t)

	tests := []struct {
		name   string
		edit   func(c *cluster.Cluster)
		status Status
		want   []string
	}{
		{"a clean sandbox", func(*cluster.Cluster) {}, Pass,
			[]string{"pg1, pg2, pg3: system identifier " + ours, "control file of " + pg1.DataDir, "through the pooler"}},
		{"pg1's data_dir is another cluster's", func(c *cluster.Cluster) {
			c.Nodes["pg1"].DataDir = other.DataDir
		}, Fail, []string{"pg1", ours, theirs, other.DataDir, nodeAddr(pg1)}},
		{"pg3 is wholly another cluster", func(c *cluster.Cluster) {
			c.Nodes["pg3"].Conninfo = sb.Conninfo(other, "postgres")
			c.Nodes["pg3"].DataDir = other.DataDir
		}, Fail, []string{"not of one cluster", "pg1, pg2: system identifier " + ours, "pg3: system identifier " + theirs}},
		{"a data_dir that is no data directory", func(c *cluster.Cluster) {
			c.Nodes["pg2"].DataDir = filepath.Join(sb.Dir, "no-such-dir")
		}, Fail, []string{"pg2", "no-such-dir", "holds no control file"}},
		{"a host user who may not read the data_dir (switching user needs root)", func(c *cluster.Cluster) {
			c.Nodes["pg2"].Host = cluster.Host{Transport: "local", User: "nobody"}
		}, Error, []string{"pg2", "permission denied", "owner"}},
		{"a node that does not answer is judged by its control file", func(c *cluster.Cluster) {
			c.Nodes["pg3"].Conninfo = fmt.Sprintf("host=127.0.0.1 port=%s user=postgres dbname=postgres sslmode=disable connect_timeout=2", portOf(closed))
		}, Pass, []string{"pg3: control file of " + pg3.DataDir, "does not answer"}},
		{"a node that does not answer with another cluster's data_dir", func(c *cluster.Cluster) {
			c.Nodes["pg3"].Conninfo = fmt.Sprintf("host=127.0.0.1 port=%s user=postgres dbname=postgres sslmode=disable connect_timeout=2", portOf(closed))
			c.Nodes["pg3"].DataDir = other.DataDir
		}, Fail, []string{"not of one cluster", "pg3: system identifier " + theirs}},
		{"the pooler routes to another cluster", func(c *cluster.Cluster) {
			// Every node is the other cluster's; the pooler still routes
			// to the sandbox's primary.
			c.Nodes = map[string]*cluster.Node{"pg1": {Name: "pg1", Conninfo: sb.Conninfo(other, "postgres"),
				Host: c.Nodes["pg1"].Host, DataDir: other.DataDir, BinDir: sb.BinDir}}
			c.Order = []string{"pg1"}
		}, Fail, []string{"the pooler routes app to " + nodeAddr(pg1), "another cluster", ours, theirs}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if strings.Contains(tt.name, "needs root") && os.Geteuid() != 0 {
				t.Skip("switching to another OS user needs root")
			}
			c := sb.Cluster()
			tt.edit(c)
			tg := &cluster.Target{Cluster: c, Facts: &cluster.Facts{}}
			r := runCheck(t, mustBuild(t, "pg.same_cluster", nil), tg)
			assertResult(t, r, tt.status, tt.want, nil)
			// A pass records the identifier of every node whose server
			// gave it, for pg.stop; anything else records none.
			for _, name := range c.Order {
				got, ok := tg.Facts.Get(cluster.SystemIDFact(name))
				answered := !(tt.status == Pass && strings.Contains(tt.name, "does not answer") && name == "pg3")
				if want := tt.status == Pass && answered; ok != want || (ok && got != ours) {
					t.Errorf("fact %s = %q, %v; want it recorded (%s) %v", cluster.SystemIDFact(name), got, ok, ours, want)
				}
			}
		})
	}
}

// portOf is the port of a host:port.
func portOf(addr string) string {
	_, p, _ := pg.SplitEndpoint(addr)
	return p
}

// TestPGSameClusterPausedPooler: a pooler paused by someone else cannot be
// asked through; the route its entry shows proves it, and the check leaves
// the pause as it found it.
func TestPGSameClusterPausedPooler(t *testing.T) {
	t.Parallel()
	ownSandboxes <- struct{}{}
	t.Cleanup(func() { <-ownSandboxes })
	sb := sandboxtest.New(t, 1)
	ctx := testCtx(t, 30*time.Second)
	admin, err := pgbouncer.Connect(ctx, sb.AdminConninfo())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.Pause(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	tg := sandboxTarget(sb)
	start := time.Now()
	r := runCheck(t, mustBuild(t, "pg.same_cluster", nil), tg)
	assertResult(t, r, Pass, []string{"paused, so not asked through it", "(pg1)"}, nil)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the check took %s on a paused pooler; it must not wait on it", took)
	}
	if !databasePaused(t, sb, "app") {
		t.Error("app is no longer paused after the check")
	}
	if err := admin.Resume(ctx, "app"); err != nil {
		t.Fatal(err)
	}
}

// databasePaused reads SHOW DATABASES' paused column for db.
func databasePaused(t *testing.T, sb *sandbox.Sandbox, db string) bool {
	t.Helper()
	_, paused, err := poolerRoute(testCtx(t, 10*time.Second), sb.Cluster().ClientPooler())
	if err != nil {
		t.Fatal(err)
	}
	return paused
}
