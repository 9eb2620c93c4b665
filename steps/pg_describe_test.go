package steps

import (
	"strings"
	"testing"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/transport"
)

// pgInventory is a production-like inventory: one conninfo in the
// keyword/value form with a quoted password, one URL, a data directory with
// a space in it, and a PgBouncer.
func pgInventory() *cluster.Cluster {
	host := cluster.Host{Transport: "local", User: "postgres"}
	return &cluster.Cluster{Name: "prod", Nodes: map[string]*cluster.Node{
		"pg1": {Name: "pg1", Conninfo: "host=10.0.0.1 port=5432 user=repl password='s3cr et' dbname=postgres connect_timeout=5",
			Host: host, DataDir: "/var/lib/postgresql/15/main", BinDir: "/usr/lib/postgresql/15/bin"},
		"pg2": {Name: "pg2", Conninfo: "postgresql://repl:pw@10.0.0.2:5433/postgres?sslmode=require&application_name=x",
			Host: host, DataDir: "/srv/pg data", BinDir: "/usr/lib/postgresql/15/bin"},
	}, Poolers: []*cluster.Pooler{{Name: cluster.DefaultPoolerName, Kind: "pgbouncer", Admin: "host=10.0.0.9 port=6432 dbname=pgbouncer user=admin",
		Database: "app", Config: "/etc/pgbouncer/pgbouncer.ini", Host: host}}}
}

func TestPgDescribe(t *testing.T) {
	t.Parallel()
	const (
		on1     = "pg1 (local as postgres)"
		on2     = "pg2 (local as postgres)"
		bouncer = "pgbouncer (local as postgres)"
	)
	tests := []struct {
		name        string
		kind        string
		raw         map[string]string
		node        string
		command     string
		changes     []string // parts Changes must contain
		destructive bool
	}{
		{name: "sql", kind: "pg.sql", raw: map[string]string{"node": "pg1", "sql": "SELECT count(*) FROM pg_stat_activity"},
			node: on1, command: "SELECT count(*) FROM pg_stat_activity", changes: []string{"whatever this SQL changes on pg1"}},
		{name: "checkpoint", kind: "pg.checkpoint", raw: map[string]string{"node": "pg1"},
			node: on1, command: "CHECKPOINT", changes: []string{"dirty buffer", "shutdown checkpoint that follows is short"}},
		{name: "stop", kind: "pg.stop", raw: map[string]string{"node": "pg1"},
			node: on1, command: "set -- $(od -An -t u8 -j 0 -N 8 /var/lib/postgresql/15/main/global/pg_control 2>/dev/null); if [ \"${1:-}\" != '<system identifier of pg1>' ]; then echo switchover:other-cluster \"${1:-}\"; exit 5; fi; if [ -e /var/lib/postgresql/15/main/postmaster.pid ]; then read -r pm < /var/lib/postgresql/15/main/postmaster.pid; case \"$pm\" in ''|*[!0-9]*) echo \"postmaster.pid names no postmaster: $pm\" >&2; exit 1;; esac; kill -INT \"$pm\" || exit 1; n=0; c=-1; while [ -e /var/lib/postgresql/15/main/postmaster.pid ]; do n=$((n+1)); if [ $n -gt 20000 ]; then echo \"still running after 60s\" >&2; exit 3; fi; if [ $((n % 30)) -eq 0 ]; then if [ $c -lt 0 ]; then LC_ALL=C /usr/lib/postgresql/15/bin/pg_controldata -D /var/lib/postgresql/15/main | grep -q '^Database cluster state: *shut down$' && c=$(date +%s); elif [ $(( $(date +%s) - c )) -ge 2 ]; then echo switchover:lingering $(ls /var/lib/postgresql/15/main/pg_wal/archive_status 2>/dev/null | grep -c '[.]ready$'); break; fi; fi; sleep 0.003; done; else echo switchover:not-running; fi; LC_ALL=C /usr/lib/postgresql/15/bin/pg_controldata -D /var/lib/postgresql/15/main",
			changes: []string{"stops PostgreSQL on pg1", "fast", "LC_ALL=C /usr/lib/postgresql/15/bin/pg_controldata -D /var/lib/postgresql/15/main", "pg1.shutdown_lsn"}},
		{name: "stop smart, quoted data directory", kind: "pg.stop", raw: map[string]string{"node": "pg2", "mode": "smart", "wait": "90s"},
			node: on2, command: "set -- $(od -An -t u8 -j 0 -N 8 '/srv/pg data/global/pg_control' 2>/dev/null); if [ \"${1:-}\" != '<system identifier of pg2>' ]; then echo switchover:other-cluster \"${1:-}\"; exit 5; fi; if [ -e '/srv/pg data/postmaster.pid' ]; then read -r pm < '/srv/pg data/postmaster.pid'; case \"$pm\" in ''|*[!0-9]*) echo \"postmaster.pid names no postmaster: $pm\" >&2; exit 1;; esac; kill -TERM \"$pm\" || exit 1; n=0; c=-1; while [ -e '/srv/pg data/postmaster.pid' ]; do n=$((n+1)); if [ $n -gt 30000 ]; then echo \"still running after 90s\" >&2; exit 3; fi; if [ $((n % 30)) -eq 0 ]; then if [ $c -lt 0 ]; then LC_ALL=C /usr/lib/postgresql/15/bin/pg_controldata -D '/srv/pg data' | grep -q '^Database cluster state: *shut down$' && c=$(date +%s); elif [ $(( $(date +%s) - c )) -ge 2 ]; then echo switchover:lingering $(ls '/srv/pg data/pg_wal/archive_status' 2>/dev/null | grep -c '[.]ready$'); break; fi; fi; sleep 0.003; done; else echo switchover:not-running; fi; LC_ALL=C /usr/lib/postgresql/15/bin/pg_controldata -D '/srv/pg data'", changes: []string{"smart"}},
		{name: "stop done at the checkpoint", kind: "pg.stop", raw: map[string]string{"node": "pg1", "done_at": "checkpoint"},
			node: on1, command: "set -- $(od -An -t u8 -j 0 -N 8 /var/lib/postgresql/15/main/global/pg_control 2>/dev/null); if [ \"${1:-}\" != '<system identifier of pg1>' ]; then echo switchover:other-cluster \"${1:-}\"; exit 5; fi; if [ -e /var/lib/postgresql/15/main/postmaster.pid ]; then read -r pm < /var/lib/postgresql/15/main/postmaster.pid; case \"$pm\" in ''|*[!0-9]*) echo \"postmaster.pid names no postmaster: $pm\" >&2; exit 1;; esac; kill -INT \"$pm\" || exit 1; n=0; c=-1; " +
				"if command -v perl >/dev/null 2>&1; then perl -e " + transport.ShellQuote(checkpointWatch) + " /var/lib/postgresql/15/main/postmaster.pid /var/lib/postgresql/15/main/global/pg_control 64 60 10; r=$?; if [ $r -eq 10 ]; then exit 0; elif [ $r -ne 0 ]; then exit $r; fi; " +
				"else while [ -e /var/lib/postgresql/15/main/postmaster.pid ]; do n=$((n+1)); if [ $n -gt 20000 ]; then echo \"still running after 60s\" >&2; exit 3; fi; set -- $(od -An -t x1 -N 64 /var/lib/postgresql/15/main/global/pg_control 2>/dev/null); st=\"${17:-}${18:-}${19:-}${20:-}\"; if [ \"$st\" = 01000000 ] || [ \"$st\" = 00000001 ]; then echo switchover:checkpointed \"$@\"; exit 0; fi; sleep 0.003; done; fi; else echo switchover:not-running; fi; LC_ALL=C /usr/lib/postgresql/15/bin/pg_controldata -D /var/lib/postgresql/15/main",
			changes: []string{"stops PostgreSQL on pg1", "done once the control file says its shutdown checkpoint is written", "waits up to 2s"}},
		{name: "stop with a command", kind: "pg.stop", raw: map[string]string{"node": "pg1", "command": "sudo systemctl stop postgresql@15-main"},
			node: on1, command: "sudo systemctl stop postgresql@15-main", changes: []string{"with the given command", "clean shutdown"}},
		{name: "start", kind: "pg.start", raw: map[string]string{"node": "pg1"},
			node: on1, command: "/usr/lib/postgresql/15/bin/pg_ctl start -D /var/lib/postgresql/15/main -w -t 60 -l /var/lib/postgresql/15/main/switchover-start.log",
			changes: []string{"starts PostgreSQL on pg1"}},
		{name: "start with a log and a wait", kind: "pg.start", raw: map[string]string{"node": "pg2", "wait": "1500ms", "log": "/var/log/pg 2.log"},
			node: on2, command: "/usr/lib/postgresql/15/bin/pg_ctl start -D '/srv/pg data' -w -t 2 -l '/var/log/pg 2.log'"},
		{name: "promote", kind: "pg.promote", raw: map[string]string{"node": "pg2", "wait": "30s"},
			node: on2, command: "SELECT CASE WHEN pg_is_in_recovery() THEN pg_promote(wait => false) END; then SELECT pg_is_in_recovery() every 2ms until false, at most 30s; SELECT pg_reload_conf() should its startup process sleep out wal_retrieve_retry_interval (it wakes it)", changes: []string{"ends recovery on pg2", "new timeline"}},
		{name: "follow", kind: "pg.follow", raw: map[string]string{"node": "pg1", "upstream": "pg2"},
			node: on1,
			command: "on pg2, unless pg_replication_slots has it: SELECT pg_create_physical_replication_slot('pg1')\n" +
				"if pg1 runs as a standby: ALTER SYSTEM SET primary_conninfo = 'host=10.0.0.2 port=5433 user=repl sslmode=require application_name=pg1'; " +
				"ALTER SYSTEM SET primary_slot_name = 'pg1'; SELECT pg_reload_conf()\n" +
				"if pg1 is stopped: touch /var/lib/postgresql/15/main/standby.signal && " +
				"{ [ ! -e /var/lib/postgresql/15/main/postgresql.auto.conf ] || grep -v -E '^[[:space:]]*(primary_conninfo|primary_slot_name)[[:space:]]*=' /var/lib/postgresql/15/main/postgresql.auto.conf || [ $? -eq 1 ]; } > /var/lib/postgresql/15/main/postgresql.auto.conf.switchover && " +
				`printf '%s\n' 'primary_conninfo = '\''host=10.0.0.2 port=5433 user=repl sslmode=require application_name=pg1'\''' 'primary_slot_name = '\''pg1'\''' >> /var/lib/postgresql/15/main/postgresql.auto.conf.switchover && ` +
				"chmod 600 /var/lib/postgresql/15/main/postgresql.auto.conf.switchover && mv -f /var/lib/postgresql/15/main/postgresql.auto.conf.switchover /var/lib/postgresql/15/main/postgresql.auto.conf && " +
				"/usr/lib/postgresql/15/bin/pg_ctl start -D /var/lib/postgresql/15/main -w -t 60 -l /var/lib/postgresql/15/main/switchover-start.log\n" +
				"then wait until pg_stat_wal_receiver on pg1 shows it streaming from pg2, on pg2's timeline",
			changes: []string{"pg1 becomes a standby streaming from pg2 through slot pg1", "primary_conninfo 'host=10.0.0.2", "never demoted"}},
		{name: "follow with a given conninfo and no slot", kind: "pg.follow", raw: map[string]string{"node": "pg2", "upstream": "pg1", "slot": "", "conninfo": "host=pg1.example port=5432 user=o'brien"},
			node: on2,
			command: "if pg2 runs as a standby: ALTER SYSTEM SET primary_conninfo = 'host=pg1.example port=5432 user=o''brien'; ALTER SYSTEM SET primary_slot_name = ''; SELECT pg_reload_conf()\n" +
				"if pg2 is stopped: touch '/srv/pg data/standby.signal' && " +
				`{ [ ! -e '/srv/pg data/postgresql.auto.conf' ] || grep -v -E '^[[:space:]]*(primary_conninfo|primary_slot_name)[[:space:]]*=' '/srv/pg data/postgresql.auto.conf' || [ $? -eq 1 ]; } > '/srv/pg data/postgresql.auto.conf.switchover' && ` +
				`printf '%s\n' 'primary_conninfo = '\''host=pg1.example port=5432 user=o'\'''\''brien'\''' 'primary_slot_name = '\'''\''' >> '/srv/pg data/postgresql.auto.conf.switchover' && ` +
				`chmod 600 '/srv/pg data/postgresql.auto.conf.switchover' && mv -f '/srv/pg data/postgresql.auto.conf.switchover' '/srv/pg data/postgresql.auto.conf' && ` +
				"/usr/lib/postgresql/15/bin/pg_ctl start -D '/srv/pg data' -w -t 60 -l '/srv/pg data/switchover-start.log'\n" +
				"then wait until pg_stat_wal_receiver on pg2 shows it streaming from pg1, on pg1's timeline",
			changes: []string{"without a slot"}},
		{name: "rewind, keeping nothing", kind: "pg.rewind", raw: map[string]string{"node": "pg1", "source": "pg2", "keep_config": "[]"},
			node: on1,
			command: "on pg2: CHECKPOINT\non pg1: LC_ALL=C /usr/lib/postgresql/15/bin/pg_rewind -D /var/lib/postgresql/15/main " +
				"--source-server='host=10.0.0.2 port=5433 user=repl dbname=postgres sslmode=require'",
			changes: []string{"checkpoint on pg2", "NOT kept"}, destructive: true},
		{name: "rewind", kind: "pg.rewind", raw: map[string]string{"node": "pg2", "source": "pg1"},
			node: on2,
			command: "on pg1: CHECKPOINT\non pg2: keep=$(mktemp -d) || exit 1; for f in postgresql.conf postgresql.auto.conf pg_hba.conf pg_ident.conf; do " +
				`if [ -f '/srv/pg data'/"$f" ]; then cp -p '/srv/pg data'/"$f" "$keep"/ || { rm -rf "$keep"; exit 1; }; fi; done; ` +
				`LC_ALL=C /usr/lib/postgresql/15/bin/pg_rewind -D '/srv/pg data' --source-server='host=10.0.0.1 port=5432 user=repl dbname=postgres sslmode=prefer'; ` +
				`rc=$?; for f in "$keep"/*; do if [ -f "$f" ]; then cp -p "$f" '/srv/pg data'/ && echo "kept the node's own ${f##*/}" || rc=1; fi; done; rm -rf "$keep"; exit $rc`,
			changes: []string{"postgresql.conf, postgresql.auto.conf, pg_hba.conf, pg_ident.conf are kept", "pg2 must be stopped"}, destructive: true},
		{name: "terminate sessions", kind: "pg.terminate_sessions", raw: map[string]string{"node": "pg2", "max_xact_age": "3s"},
			node: on2,
			command: "SELECT pg_terminate_backend($1) for each pid listed by pg.BlockingSessions: client backends, other than switchover's own, " +
				"holding a granted lock (advisory locks included, their own transaction's ids excepted) or with a transaction open longer than 3s (pg_stat_activity joined with pg_locks)",
			changes: []string{"terminates those sessions on pg2", "roll back", "disconnected"}, destructive: true},
		{name: "pause", kind: "pgbouncer.pause", raw: map[string]string{"max_wait": "2s"},
			node: bouncer, command: "PAUSE app", changes: []string{"waits up to 2s", "clients wait instead of failing"}},
		{name: "resume", kind: "pgbouncer.resume", node: bouncer, command: "RESUME app", changes: []string{"clients of app go on"}},
		{name: "repoint", kind: "pgbouncer.repoint", raw: map[string]string{"to": "pg2"},
			node: bouncer,
			command: "in /etc/pgbouncer/pgbouncer.ini, [databases]: every entry pointing where app points now (the primary) set to host=10.0.0.2 port=5433, keep the rest (temp file, then mv); " +
				"entries pointing elsewhere left alone and named; then RELOAD; then SHOW DATABASES must show them at 10.0.0.2:5433",
			changes: []string{"new server connections for app, and every entry beside it on the same server, to pg2 (10.0.0.2:5433)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var p printed
			raw := tt.raw
			var s Step
			if raw["keep_config"] == "[]" { // an empty list, which build cannot give
				d, _ := Lookup(tt.kind)
				s = buildList(t, d, raw, "keep_config")
			} else {
				s = build(t, tt.kind, raw)
			}
			got := s.Describe(p.target(pgInventory()))
			if got.Node != tt.node {
				t.Errorf("Node = %q, want %q", got.Node, tt.node)
			}
			if got.Command != tt.command {
				t.Errorf("Command =\n%s\nwant\n%s", got.Command, tt.command)
			}
			for _, c := range tt.changes {
				if !strings.Contains(got.Changes, c) {
					t.Errorf("Changes = %q, want it to contain %q", got.Changes, c)
				}
			}
			if got.Changes == "" {
				t.Error("Changes is empty")
			}
			if d, _ := Lookup(tt.kind); d.Destructive != tt.destructive {
				t.Errorf("Destructive = %v, want %v", d.Destructive, tt.destructive)
			}
			// Without an inventory a plan still shows what it can.
			for _, tg := range []*cluster.Target{nil, p.target(nil)} {
				e := s.Describe(tg)
				if !strings.Contains(e.Node, "no inventory given") && !strings.Contains(e.Node, "the inventory has no pooler") {
					t.Errorf("Describe without inventory: Node = %q", e.Node)
				}
				if e.Command == "" {
					t.Error("Describe without inventory: empty Command")
				}
			}
		})
	}
}
