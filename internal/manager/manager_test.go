package manager_test

import (
	"context"
	"strings"
	"testing"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/manager"
	"github.com/switchover/switchover/internal/patroni"
	"github.com/switchover/switchover/internal/patroni/patronitest"
)

func TestKinds(t *testing.T) {
	if got, want := manager.Known(), `"patroni", "repmgr" or "pg_auto_failover"`; got != want {
		t.Errorf("Known() = %s, want %s", got, want)
	}
	for _, k := range []cluster.ManagerKind{cluster.ManagerPatroni, cluster.ManagerRepmgr, cluster.ManagerPgAutoFailover} {
		m, ok := manager.Lookup(k)
		if !ok || m.Kind != k || m.Name == "" {
			t.Errorf("Lookup(%s) = %+v, %t", k, m, ok)
		}
		// A manager that moves the primary on its own says what it shows
		// of a primary it settled; repmgr does not move it on its own.
		if moves := m.Settled != nil; moves != (k != cluster.ManagerRepmgr) || moves != (m.Agrees != "") {
			t.Errorf("%s: settled asked %t, agrees %q", k, moves, m.Agrees)
		}
	}
	if _, ok := manager.Lookup("stolon"); ok {
		t.Error("Lookup(stolon) found a kind")
	}
}

// Patroni has settled a node as the primary only when it holds the leader
// lock and its PostgreSQL runs; every other answer says why not.
func TestPatroniSettled(t *testing.T) {
	f := patronitest.New(t)
	m := &cluster.Manager{Kind: cluster.ManagerPatroni, URLs: []string{f.URL()}}
	k, _ := manager.Lookup(cluster.ManagerPatroni)
	ctx := context.Background()
	if why := k.Settled(ctx, m, "pg1"); why != "" {
		t.Errorf("pg1, the running leader: %s", why)
	}
	for node, want := range map[string]string{
		"pg2": "Patroni shows it replica, streaming, not the running leader",
		"pg9": "Patroni lists no member pg9",
	} {
		if why := k.Settled(ctx, m, node); !strings.Contains(why, want) {
			t.Errorf("%s: %q, want %q", node, why, want)
		}
	}
	f.Mu.Lock()
	f.Members[0].State = patroni.MemberState("stopping")
	f.Mu.Unlock()
	if why := k.Settled(ctx, m, "pg1"); !strings.Contains(why, "not the running leader") {
		t.Errorf("pg1 stopping: %q", why)
	}
	down := &cluster.Manager{Kind: cluster.ManagerPatroni, URLs: []string{"http://127.0.0.1:1"}}
	if why := k.Settled(ctx, down, "pg1"); !strings.Contains(why, "Patroni could not be asked") || strings.Contains(why, "\n") {
		t.Errorf("no API: %q", why)
	}
}
