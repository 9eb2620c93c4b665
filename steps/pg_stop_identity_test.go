package steps

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

// systemIDAt asks the server at conninfo for its system identifier.
func systemIDAt(t *testing.T, conninfo string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pg.Connect(ctx, conninfo, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer closeConn(conn)
	return pg.SystemIdentifier(ctx, conn)
}

// TestPgStopRefusesAnotherClustersDataDir: pg1's data_dir in the inventory
// is that of another cluster running on the same host. pg.stop learns pg1's
// system identifier from its server (or, when it does not answer, from the
// other nodes), finds another in the control file and stops nothing: both
// clusters' servers still run.
func TestPgStopRefusesAnotherClustersDataDir(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Shared(t)
	other := sandboxtest.Independent(t, sb, "other-pgstop")
	pg1, _ := sb.Node("pg1")
	ours, err := systemIDAt(t, sb.Conninfo(pg1, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := systemIDAt(t, sb.Conninfo(other, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(t.TempDir(), "stop-command-ran")

	tests := []struct {
		name     string
		raw      map[string]string
		conninfo string // pg1's, when not its own
		from     string // where the identifier is learnt
	}{
		{"pg_ctl, pg1 answers", map[string]string{"node": "pg1"}, "", "asked of pg1"},
		{"the runbook's command, pg1 answers", map[string]string{"node": "pg1", "command": "touch " + marker}, "", "asked of pg1"},
		{"pg_ctl, pg1 does not answer", map[string]string{"node": "pg1"},
			"host=127.0.0.1 port=1 user=postgres dbname=postgres sslmode=disable connect_timeout=2", "asked of pg2, pg3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg, p := sandboxTarget(sb)
			tg.Cluster.Nodes["pg1"].DataDir = other.DataDir
			if tt.conninfo != "" {
				tg.Cluster.Nodes["pg1"].Conninfo = tt.conninfo
			}
			out, err := apply(t, tg, p, "pg.stop", tt.raw)
			wantErr(t, err, `stop "pg1"`, "refused", other.DataDir, theirs, ours, "another cluster's", "nothing stopped")
			wantLine(t, out, "system identifier of pg1's cluster: "+ours, tt.from, SystemIDFact("pg1"))
			if v, _ := tg.Facts.Get(SystemIDFact("pg1")); v != ours {
				t.Errorf("fact %s = %q, want %s", SystemIDFact("pg1"), v, ours)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Error("the stop command ran")
			}
			stillWritable(t, sb, sb.Conninfo(pg1, "postgres"), "pg1")
			stillWritable(t, sb, sb.Conninfo(other, "postgres"), "the other cluster's primary")
			if _, ok := tg.Facts.Get("pg1.shutdown_lsn"); ok {
				t.Error("a shutdown LSN was recorded for pg1")
			}
		})
	}

	t.Run("a control file of another cluster is no proof of a stop", func(t *testing.T) {
		// The other cluster's server is stopped already (by someone
		// else): nothing to stop, and its clean shutdown proves nothing
		// about pg1.
		stopped := sandboxtest.Independent(t, sb, "other-pgstop-stopped")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := sb.StopIndependent(ctx, stopped, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		tg, p := sandboxTarget(sb)
		tg.Cluster.Nodes["pg1"].DataDir = stopped.DataDir
		_, err := apply(t, tg, p, "pg.stop", map[string]string{"node": "pg1"})
		wantErr(t, err, "refused", stopped.DataDir, ours, "nothing stopped")
		if _, ok := tg.Facts.Get("pg1.shutdown_lsn"); ok {
			t.Error("a shutdown LSN was recorded for pg1 from another cluster's control file")
		}
		stillWritable(t, sb, sb.Conninfo(pg1, "postgres"), "pg1")
	})
}

// stillWritable fails the test unless the server at conninfo answers and
// is out of recovery.
func stillWritable(t *testing.T, sb *sandbox.Sandbox, conninfo, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pg.Connect(ctx, conninfo, 5*time.Second)
	if err != nil {
		t.Fatalf("%s does not answer: %v", what, err)
	}
	defer closeConn(conn)
	var recovery bool
	if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&recovery); err != nil || recovery {
		t.Errorf("%s: in recovery %v (%v); want a running primary", what, recovery, err)
	}
}
