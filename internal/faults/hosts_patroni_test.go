package faults

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/patroni"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

// TestPatroniOnHostsOfTheirOwn brings up a Patroni cluster on hosts of
// their own with the binary (`sandbox up --hosts --manager patroni`): each
// member's Patroni and PostgreSQL inside its host's namespace, on the
// host's address, etcd on this host's side of the bridge. It runs the
// shipped patroni-switchover pg1 -> pg2 over ssh (0 lost, pg2 the leader
// in every member's view, never two writable primaries), then the monthly
// rolling restart back to pg1 with a patch command that leaves a mark on
// each host. It brings the sandbox down
// with the binary and finds nothing of it left.
func TestPatroniOnHostsOfTheirOwn(t *testing.T) {
	if _, _, err := sandbox.FindPatroni(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and Patroni or etcd is missing: %v", err)
		}
		t.Skipf("no Patroni here: %v", err)
	}
	sb, work := upOnHosts(t, sandbox.ManagerPatroni)
	checkPatroniHosts(t, sb)

	journalStall = cmdTimeout // checks over ssh on a loaded machine
	t.Cleanup(func() { journalStall = pollTimeout })
	books := t.TempDir()
	ok := t.Run("patroni-switchover pg1 -> pg2 over ssh", func(t *testing.T) {
		w := startWriter(t, sb, "hosts_patroni")
		smp := sandboxtest.StartSampler(sb)
		res := runBinary(t, work, "run", patientPlaybook(t, books, patroniPlaybook), "-i", sb.Inventory(), "--yes",
			"--journal-dir="+t.TempDir(), "--var", "primary=pg1", "--var", "candidate=pg2")
		seen := smp.Finish()
		t.Logf("run: exit %d\n%s", res.Code, lastLinesOf(res.Output(), 30))
		if res.Code != 0 {
			t.Fatalf("patroni-switchover over ssh: %s", res)
		}
		if !strings.Contains(res.Stdout, "0 lost") {
			t.Errorf("the run's canary did not report 0 lost:\n%s", res.Stdout)
		}
		top := waitHealthyHosts(t, sb)
		if top.primary != "pg2" {
			t.Errorf("after the switchover: %s, want pg2 the primary", top.roles)
		}
		waitLeaderEverywhere(t, sb, "pg2")
		stopWriter(t, w)
		seen.CheckKept(t, sb, top.primary)
	})

	if ok {
		t.Run("patroni-rolling-restart back to pg1 over ssh", func(t *testing.T) {
			patroniRollingOnHosts(t, sb, work, patientPlaybook(t, books, "patroni-rolling-restart"))
		})
	}

	downOnHosts(t, sb, work)
}

// checkPatroniHosts checks that the inventory reaches every member over
// ssh and its REST API on its host's address, and that each member's
// Patroni and PostgreSQL run inside that host's namespace.
func checkPatroniHosts(t *testing.T, sb *sandbox.Sandbox) {
	t.Helper()
	checkManagerHosts(t, sb, "patroni-%s")
	inv, err := os.ReadFile(sb.Inventory())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range sb.Nodes {
		h, _ := sb.Net.Host(n.Name)
		if want := fmt.Sprintf("- %s", sb.RESTURL(n)); !strings.Contains(string(inv), want) {
			t.Errorf("inventory does not reach %s's REST API on its own host (%q):\n%s", n.Name, want, inv)
		}
		if !strings.HasPrefix(sb.RESTURL(n), "http://"+h.Addr+":") {
			t.Errorf("%s's REST API is %s, not on its host's address %s", n.Name, sb.RESTURL(n), h.Addr)
		}
	}
}

// waitLeaderEverywhere waits (≤hostsWait) until every member's REST API
// names leader the one running leader.
func waitLeaderEverywhere(t *testing.T, sb *sandbox.Sandbox, leader string) {
	t.Helper()
	m := &cluster.Manager{Kind: sandbox.ManagerPatroni}
	for _, n := range sb.Nodes {
		m.URLs = append(m.URLs, sb.RESTURL(n))
	}
	c, err := patroni.New(m)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Patroni's leader "+leader+" in every member's view", func(ctx context.Context) error {
		for _, v := range c.ClusterEach(ctx) {
			if v.Err != nil {
				return fmt.Errorf("%s: %w", v.URL, v.Err)
			}
			ls := v.State.Leaders()
			if len(ls) != 1 || ls[0].Name != leader || !ls[0].SettledLeader() {
				return fmt.Errorf("%s says %s, want %s the one running leader", v.URL, v.State, leader)
			}
		}
		return nil
	})
}

// patroniRollingOnHosts runs the monthly rolling restart pg2 -> pg1 with a
// patch command that leaves each host's address in a file the hosts
// share: every member patched once and restarted, pg1 the leader after.
func patroniRollingOnHosts(t *testing.T, sb *sandbox.Sandbox, work, runbook string) {
	marks := filepath.Join(os.TempDir(), sb.Net.Prefix+"-patroni-patched")
	os.Remove(marks)
	t.Cleanup(func() { os.Remove(marks) })
	patch := fmt.Sprintf(`echo "$(hostname -I | tr -d ' ')" >> %s`, marks)
	before := startTimes(t, sb)
	w := startWriter(t, sb, "hosts_patroni_rolling")
	smp := sandboxtest.StartSampler(sb)
	res := runBinary(t, work, "run", runbook, "-i", sb.Inventory(), "--yes", "--journal-dir="+t.TempDir(),
		"--var", "primary=pg2", "--var", "candidate=pg1", "--var", "patch_command="+patch)
	seen := smp.Finish()
	t.Logf("run: exit %d\n%s", res.Code, lastLinesOf(res.Output(), 30))
	if res.Code != 0 {
		t.Fatalf("patroni-rolling-restart over ssh: %s", res)
	}
	if !strings.Contains(res.Stdout, "0 lost") {
		t.Errorf("the run's canary did not report 0 lost:\n%s", res.Stdout)
	}
	top := waitHealthyHosts(t, sb)
	if top.primary != "pg1" {
		t.Errorf("after the rolling restart: %s, want pg1 the primary", top.roles)
	}
	waitLeaderEverywhere(t, sb, "pg1")
	stopWriter(t, w)
	seen.CheckKept(t, sb, top.primary)
	b, err := os.ReadFile(marks)
	if err != nil {
		t.Fatalf("no host left a patch mark: %v", err)
	}
	perHost := map[string]int{}
	for _, line := range strings.Fields(string(b)) {
		perHost[line]++
	}
	now := startTimes(t, sb)
	for _, n := range sb.Nodes {
		if got := perHost[sb.Addr(n.Name)]; got != 1 {
			t.Errorf("%s (%s) patched %d times, want once; marks:\n%s", n.Name, sb.Addr(n.Name), got, b)
		}
		if !now[n.Name].After(before[n.Name]) {
			t.Errorf("%s started %s, not after %s: not restarted", n.Name, now[n.Name], before[n.Name])
		}
	}
}
