package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/internal/testbin"
	"github.com/switchover/switchover/runbook/spec"
)

// TestSandboxUpFleetRefusals: what a fleet sandbox does not take, and a
// port taken in cluster c2's range, are refused as bad usage (exit 2),
// saying which, before anything is created or started.
func TestSandboxUpFleetRefusals(t *testing.T) {
	t.Parallel()
	base, err := sandbox.FreePortBase(3*sandbox.FleetStride - 1)
	if err != nil {
		t.Fatal(err)
	}
	taken := base + sandbox.FleetStride + 2 // c2's standby
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(taken)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() }) // after the parallel subtests
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no clusters", []string{"--clusters", "0"}, "--clusters 0: want 1 to 20"},
		{"too many clusters", []string{"--clusters", "21"}, "--clusters 21: want 1 to 20"},
		{"a manager", []string{"--clusters", "3", "--manager", "patroni"}, "--manager patroni: not supported for a fleet sandbox yet"},
		{"a router and hosts", []string{"--clusters", "2", "--router", "haproxy", "--hosts"}, "--router haproxy, --hosts: not supported for a fleet sandbox yet"},
		{"several poolers", []string{"--clusters", "2", "--poolers", "2"}, "--poolers 2: not supported"},
		{"too many standbys", []string{"--clusters", "2", "--standbys", "9"}, "--standbys 9: a fleet's cluster has room for 1 to 8"},
		{"a port taken in c2's range", []string{"--clusters", "3", "--port-base", strconv.Itoa(base)},
			fmt.Sprintf("cluster c2 (ports %d-%d): port %d taken on 127.0.0.1", base+sandbox.FleetStride, base+sandbox.FleetStride+2, taken)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "fleet")
			code, out, errOut := executeT(t, append([]string{"sandbox", "up", "--dir", dir}, tt.args...)...)
			if code != 2 || !strings.Contains(errOut, tt.want) {
				t.Errorf("sandbox up %s: exit %d\nstdout: %s\nstderr: %s\nwant exit 2 saying %q", strings.Join(tt.args, " "), code, out, errOut, tt.want)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("sandbox up %s created %s", strings.Join(tt.args, " "), dir)
			}
		})
	}
}

// TestBinarySandboxFleet: `sandbox up --clusters 3` brings up three
// clusters of two nodes, each primary taking writes through its own
// PgBouncer and each standby replaying them, under names of their own;
// the fleet file is YAML with the fleet's keys and names inventories the
// loader reads and `validate` passes with the shipped playbook; `sandbox
// status` shows every cluster; `sandbox down` leaves no process and no
// directory.
func TestBinarySandboxFleet(t *testing.T) {
	dir := sandboxtest.FleetDir(t)
	work := t.TempDir()
	base, err := sandbox.FreePortBase(3*sandbox.FleetStride - 1)
	if err != nil {
		t.Fatal(err)
	}
	r := testbin.Run(t, 5*time.Minute, work, "sandbox", "up", "--clusters", "3", "--dir", dir, "--port-base", strconv.Itoa(base))
	if r.Code != 0 {
		t.Fatalf("sandbox up --clusters 3: %s", r)
	}
	t.Logf("sandbox up --clusters 3:\n%s", r.Stdout)
	fleetFile := filepath.Join(dir, "fleet.yaml")
	for i := 0; i < 3; i++ {
		b := base + sandbox.FleetStride*i
		row := fmt.Sprintf("  c%d       %d   %d    %d     %s\n", i+1, b, b+1, b+2, filepath.Join(dir, fmt.Sprintf("c%d", i+1)))
		assertContains(t, "sandbox up's table", r.Stdout, row)
	}
	assertContains(t, "sandbox up", r.Stdout, "  CLUSTER  POOLER  PRIMARY  STANDBYS  DIR\n", "fleet file: "+fleetFile, "switchover fleet plan "+fleetFile)

	checkFleetFileKeys(t, fleetFile)
	names := map[string]bool{}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("c%d", i)
		inv := filepath.Join(dir, name, "inventory.yaml")
		src, err := os.ReadFile(inv)
		if err != nil {
			t.Fatal(err)
		}
		loaded, err := spec.LoadInventory(inv, src)
		if err != nil {
			t.Fatalf("%s: %v", inv, err)
		}
		if loaded.Cluster.Name != name || names[name] {
			t.Errorf("%s names cluster %q; want %q, once", inv, loaded.Cluster.Name, name)
		}
		names[loaded.Cluster.Name] = true
		v := mustRun(t, 0, work, "validate", "postgres-streaming-switchover", "-i", inv)
		assertContains(t, "validate -i "+inv, v.Stdout, "valid")

		sb, err := sandbox.Load(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		primary := sandboxtest.Node(t, sb, "pg1")
		if port := sandboxtest.WriteThroughPooler(t, sb); port != primary.Port {
			t.Errorf("%s: a write through PgBouncer landed on port %d, not on the primary's %d", name, port, primary.Port)
		}
		sandboxtest.EventuallyQuery(t, sb, "pg2", "SELECT status FROM pg_stat_wal_receiver", "streaming")
		waitReplicated(t, sb, name)
	}

	s := mustRun(t, 0, work, "sandbox", "status", "--dir", dir)
	for i := 1; i <= 3; i++ {
		assertContains(t, "sandbox status", s.Stdout, fmt.Sprintf("c%d       pg1", i), fmt.Sprintf("c%d       pg2", i))
	}

	f, err := sandbox.LoadFleet(dir)
	if err != nil {
		t.Fatal(err)
	}
	pids := f.PIDs()
	if len(pids) != 9 {
		t.Errorf("the fleet runs %d processes, want 9 (3 clusters of pg1, pg2, pgbouncer): %v", len(pids), pids)
	}
	d := testbin.Run(t, 3*time.Minute, work, "sandbox", "down", "--dir", dir)
	if d.Code != 0 {
		t.Fatalf("sandbox down: %s", d)
	}
	t.Logf("sandbox down:\n%s", d.Stdout)
	assertContains(t, "sandbox down", d.Stdout, "3 clusters, stopped 9 processes, removed "+dir)
	for name, pid := range pids {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil && processAlive(pid) {
			t.Errorf("%s (pid %d) still runs after sandbox down", name, pid)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s is left after sandbox down (err %v)", dir, err)
	}
	if left := sandboxtest.Leftovers("", dir); len(left) > 0 {
		t.Errorf("left running after sandbox down:\n%s", strings.Join(left, "\n"))
	}
}

// waitReplicated waits until the write through the pooler is on the
// standby: a commit on both nodes.
func waitReplicated(t *testing.T, sb *sandbox.Sandbox, cluster string) {
	t.Helper()
	c := sandboxtest.Connect(t, sb, "pg2", "app")
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var n int
		err := c.QueryRow(ctx, "SELECT count(*) FROM probe").Scan(&n)
		cancel()
		if err == nil && n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the write through the pooler is not on the standby after 30s (rows %d, err %v)", cluster, n, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// processAlive reports whether pid runs (a zombie is gone).
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z'
}

// checkFleetFileKeys reads a fleet sandbox's fleet file as YAML: its keys,
// in order, and the clusters' inventories and labels.
func checkFleetFileKeys(t *testing.T, path string) {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil || len(doc.Content) != 1 {
		t.Fatalf("%s is not one YAML document: %v\n%s", path, err, src)
	}
	var keys []string
	for i := 0; i < len(doc.Content[0].Content); i += 2 {
		keys = append(keys, doc.Content[0].Content[i].Value)
	}
	if want := []string{"fleet", "playbook", "candidate", "clusters", "waves", "concurrency", "halt"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("%s: keys %v, want %v", path, keys, want)
	}
	var f struct {
		Playbook string `yaml:"playbook"`
		Clusters []struct {
			Inventory string            `yaml:"inventory"`
			Labels    map[string]string `yaml:"labels"`
		} `yaml:"clusters"`
	}
	if err := yaml.Unmarshal(src, &f); err != nil {
		t.Fatal(err)
	}
	if f.Playbook != "postgres-streaming-switchover" || len(f.Clusters) != 3 {
		t.Fatalf("%s: playbook %q, %d clusters", path, f.Playbook, len(f.Clusters))
	}
	for i, c := range f.Clusters {
		want := map[string]string{"dc": []string{"a", "b"}[i%2]}
		if c.Inventory != fmt.Sprintf("c%d/inventory.yaml", i+1) || !reflect.DeepEqual(c.Labels, want) {
			t.Errorf("%s: cluster %d is %+v", path, i+1, c)
		}
	}
}
