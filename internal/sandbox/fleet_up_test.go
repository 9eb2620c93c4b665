package sandbox_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

// TestFleetUpRefusesATakenPort: a port taken in cluster c2's range is
// refused, naming the cluster and the port, before anything is created or
// started.
func TestFleetUpRefusesATakenPort(t *testing.T) {
	t.Parallel()
	base, err := sandbox.FreePortBase(3*sandbox.FleetStride - 1)
	if err != nil {
		t.Fatal(err)
	}
	taken := base + sandbox.FleetStride + 1 // c2's primary
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(taken)))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dir := filepath.Join(t.TempDir(), "fleet")
	started := false
	_, err = sandbox.FleetUpWith(context.Background(), sandbox.FleetOptions{Dir: dir, Clusters: 3, PortBase: base},
		func(context.Context, sandbox.Options) (*sandbox.Sandbox, error) {
			started = true
			return nil, context.Canceled
		})
	wantRange := strconv.Itoa(base+sandbox.FleetStride) + "-" + strconv.Itoa(base+sandbox.FleetStride+2)
	if err == nil || !strings.Contains(err.Error(), "cluster c2 (ports "+wantRange+"): port "+strconv.Itoa(taken)+" taken") {
		t.Fatalf("FleetUp with port %d taken: err %v; want one naming c2 and the port", taken, err)
	}
	if strings.Contains(err.Error(), "cluster c1") || strings.Contains(err.Error(), "cluster c3") {
		t.Errorf("the refusal names a cluster whose ports are free: %v", err)
	}
	if started {
		t.Error("a cluster was started")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s was created (err %v)", dir, err)
	}
}

// TestFleetUpFailureLeavesNothing: when a cluster fails half-way up (c2:
// its primary runs, its standby's base backup fails), the clusters already
// up are brought down, those on their way up stop, and nothing is left: no
// process that runs from the fleet's directory, no directory; the error
// names the cluster and why.
func TestFleetUpFailureLeavesNothing(t *testing.T) {
	dir := sandboxtest.FleetDir(t)
	bin, err := sandbox.FindBinDir("")
	if err != nil {
		t.Fatal(err)
	}
	broken := brokenBinDir(t, bin, "pg_basebackup")
	c1Done := make(chan struct{})
	var mu sync.Mutex
	var called []string
	up := func(ctx context.Context, o sandbox.Options) (*sandbox.Sandbox, error) {
		mu.Lock()
		called = append(called, o.Name)
		mu.Unlock()
		switch o.Name {
		case "c1":
			defer close(c1Done)
		case "c2":
			// Fail with c1 up, so that there is a cluster to bring down.
			select {
			case <-c1Done:
			case <-time.After(3 * time.Minute):
				return nil, errors.New("c1 did not finish within 3m")
			}
			o.BinDir = broken
		}
		return sandbox.Up(ctx, o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f, err := sandbox.FleetUpWith(ctx, sandbox.FleetOptions{Dir: dir, Clusters: 3, Parallel: 2, Log: t.Logf}, up)
	if err == nil {
		t.Fatalf("FleetUp with c2's pg_basebackup failing came up: %+v", f)
	}
	t.Logf("FleetUp: %v (clusters started: %v)", err, called)
	for _, want := range []string{"cluster c2 did not come up", "pg_basebackup pg2", "injected", "c1 was up", "nothing is left running"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s is left (err %v)", dir, err)
	}
	if left := sandboxtest.Leftovers("", dir); len(left) > 0 {
		t.Errorf("left running after the failed bring-up:\n%s", strings.Join(left, "\n"))
	}
}

// brokenBinDir is a copy of PostgreSQL's bin directory (links) whose tool
// fails, readable by the servers' user.
func brokenBinDir(t *testing.T, bin, tool string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "switchover-broken-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != tool {
			if err := os.Symlink(filepath.Join(bin, e.Name()), filepath.Join(dir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	script := "#!/bin/sh\necho \"" + tool + ": could not connect to the primary (injected by the test)\" >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(dir, tool), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestUpRefusesAFleetDir: a single sandbox is not brought up in a fleet
// sandbox's directory, where `sandbox down` would take only the fleet.
func TestUpRefusesAFleetDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, sandbox.FleetMarker), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := sandbox.Up(context.Background(), sandbox.Options{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "already holds a fleet sandbox") {
		t.Fatalf("Up in a fleet's directory: %v; want a refusal", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("Up wrote in the fleet's directory: %v", ents)
	}
}
