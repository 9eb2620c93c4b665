package sandbox_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/checks"
	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/patroni"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/steps"
)

// running reports whether pid is a live process (a zombie is gone).
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z'
}

// waitFor polls cond every 200ms until it holds or limit passes.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not within %s; last seen: %s", what, limit, seen)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestPatroniSandbox(t *testing.T) {
	sb := sandboxtest.NewPatroni(t, 2)
	dir := sb.Dir
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	pids := sb.PIDs()
	downed := false
	t.Cleanup(func() {
		if !downed {
			_ = sb.Down(context.Background())
		}
	})
	for _, want := range []string{"etcd", "patroni-pg1", "patroni-pg2", "patroni-pg3", "pg1", "pg2", "pg3", "pgbouncer"} {
		if pids[want] == 0 {
			t.Errorf("PIDs() has no %s: %v", want, pids)
		}
	}
	if loaded, err := sandbox.Load(dir); err != nil || loaded.Manager != sandbox.ManagerPatroni {
		t.Errorf("sandbox.json: manager %v, err %v; want patroni", loaded, err)
	}
	inv, err := os.ReadFile(sb.Inventory())
	if err != nil || !strings.Contains(string(inv), "manager:\n  kind: patroni\n  urls:\n    - "+sb.RESTURL(sb.Nodes[0])) {
		t.Errorf("inventory has no patroni manager section (err %v):\n%s", err, inv)
	}

	c := sb.Cluster()
	client, err := patroni.New(c.Manager)
	if err != nil {
		t.Fatal(err)
	}
	st, err := client.Cluster(ctx)
	if err != nil {
		t.Fatalf("GET /cluster: %v", err)
	}
	if l := st.Leaders(); len(l) != 1 || l[0].Name != "pg1" || !l[0].SettledLeader() {
		t.Errorf("/cluster: want pg1 the running leader, got %s", st)
	}
	for _, name := range []string{"pg2", "pg3"} {
		m, ok := st.Member(name)
		if !ok || !m.SettledReplica() {
			t.Errorf("/cluster: want %s a running replica, got %s", name, st)
		}
	}

	target := &cluster.Target{Cluster: c, Output: func(line string) { t.Log(line) }}
	maint := &checks.Maintenance{}
	if r := maint.Run(ctx, target); r.Status != checks.Fail {
		t.Errorf("cluster.maintenance before pause: %s %s; want Fail", r.Status, r.Observed)
	}
	if err := (&steps.PatroniPause{Pause: true}).Apply(ctx, target); err != nil {
		t.Fatalf("patroni.pause: %v", err)
	}
	if r := maint.Run(ctx, target); r.Status != checks.Pass {
		t.Errorf("cluster.maintenance after pause: %s %s; want Pass", r.Status, r.Observed)
	}
	if err := (&steps.PatroniPause{Pause: false}).Apply(ctx, target); err != nil {
		t.Fatalf("patroni.resume: %v", err)
	}
	if r := maint.Run(ctx, target); r.Status != checks.Fail {
		t.Errorf("cluster.maintenance after resume: %s %s; want Fail", r.Status, r.Observed)
	}

	sw := &steps.PatroniSwitchover{Leader: "pg1", Candidate: "pg2", Within: 60 * time.Second}
	if err := sw.Apply(ctx, target); err != nil {
		t.Fatalf("patroni.switchover: %v", err)
	}
	pg2, _ := sb.Node("pg2")
	waitFor(t, 30*time.Second, "pg2 writable", func() (bool, string) {
		conn, err := pg.Connect(ctx, sb.Conninfo(pg2, "app"), 5*time.Second)
		if err != nil {
			return false, err.Error()
		}
		defer conn.Close(context.Background())
		var writable bool
		if err := conn.QueryRow(ctx, "SELECT NOT pg_is_in_recovery()").Scan(&writable); err != nil {
			return false, err.Error()
		}
		return writable, fmt.Sprintf("writable=%t", writable)
	})
	waitFor(t, 60*time.Second, "pg1 back as a running replica", func() (bool, string) {
		st, err := client.Cluster(ctx)
		if err != nil {
			return false, err.Error()
		}
		m, ok := st.Member("pg1")
		l := st.Leaders()
		return ok && m.SettledReplica() &&
			len(l) == 1 && l[0].Name == "pg2", st.String()
	})

	all := sb.PIDs()
	downed = true
	if err := sb.Down(ctx); err != nil {
		t.Fatalf("sandbox down: %v", err)
	}
	for name, pid := range all {
		if running(pid) {
			t.Errorf("after down, %s (pid %d) still runs", name, pid)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("after down, %s still exists (%v)", dir, err)
	}
}

func TestUpRejectsUnknownManager(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "sb")
	_, err := sandbox.Up(context.Background(), sandbox.Options{Dir: dir, Manager: "pacemaker"})
	if err == nil || !strings.Contains(err.Error(), "--manager pacemaker: want none") {
		t.Fatalf("Up with manager pacemaker: got %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s was created (%v)", dir, err)
	}
}
