// Package sandboxtest gives tests real PostgreSQL clusters on loopback: a
// fresh sandbox for a test that changes it, or one shared by a package's
// read-only tests. Without PostgreSQL binaries the tests skip, unless CI is
// set: under CI a missing server is a failure. It also has what tests do
// to a sandbox and read of it: SQL on a node, a restart, the roles in one
// line, a write through the pooler, and writers and samplers that watch a
// run from outside.
package sandboxtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/integration"
	"github.com/switchover/switchover/internal/sandbox"
)

var (
	mu     sync.Mutex
	shared *sandbox.Sandbox
	inMain bool // MainThen runs: it brings the shared sandbox down
	tmp    []string
)

// available reports whether a sandbox can be brought up here.
func available(t testing.TB) {
	t.Helper()
	integration.Need(t)
	_, err := sandbox.FindBinDir("")
	require(t, "PostgreSQL", err)
}

func up(standbys int) (*sandbox.Sandbox, error) { return upWith(sandbox.Options{Standbys: standbys}) }

func upWith(o sandbox.Options) (*sandbox.Sandbox, error) {
	// Two tries: packages run in parallel, and two sandboxes starting at
	// once can race for the same free ports.
	var err error
	for try := 0; try < 2; try++ {
		var dir string
		dir, err = os.MkdirTemp("", "switchover-test-")
		if err != nil {
			return nil, err
		}
		os.Remove(dir) // Up creates it, with the right owner
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		var sb *sandbox.Sandbox
		o.Dir = dir
		sb, err = sandbox.Up(ctx, o)
		cancel()
		if err == nil {
			return sb, nil
		}
	}
	return nil, err
}

// New brings up a sandbox with the given number of standbys for one test
// and brings it down when the test ends.
func New(t testing.TB, standbys int) *sandbox.Sandbox {
	t.Helper()
	available(t)
	sb, err := up(standbys)
	if err != nil {
		t.Fatalf("sandbox up: %v", err)
	}
	downAtEnd(t, sb)
	return sb
}

// NewPoolers brings up a sandbox with the given number of standbys and
// of PgBouncers (each with an app entry on pg1 and an app_ro entry on the
// last standby) for one test, and brings it down when the test ends.
func NewPoolers(t testing.TB, standbys, poolers int) *sandbox.Sandbox {
	t.Helper()
	available(t)
	sb, err := upWith(sandbox.Options{Standbys: standbys, Poolers: poolers})
	if err != nil {
		t.Fatalf("sandbox up --poolers %d: %v", poolers, err)
	}
	downAtEnd(t, sb)
	return sb
}

// NewPatroni brings up a sandbox managed by Patroni and a single-node
// etcd, pg1 the leader, for one test, and brings it down when the test
// ends. Without Patroni or etcd the test skips, unless CI is set.
func NewPatroni(t testing.TB, standbys int) *sandbox.Sandbox {
	t.Helper()
	available(t)
	_, _, err := sandbox.FindPatroni()
	require(t, "Patroni or etcd", err)
	dir := tempDir(t, "switchover-patroni-test-")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sb, err := sandbox.Up(ctx, sandbox.Options{Dir: dir, Standbys: standbys, Manager: sandbox.ManagerPatroni, Log: t.Logf})
	if err != nil {
		t.Fatalf("sandbox up --manager patroni: %v", err)
	}
	downAtEnd(t, sb)
	return sb
}

// Shared returns a sandbox (pg1 primary, pg2 and pg3 streaming) shared by
// the package's tests. Tests using it must leave it as they found it. The
// package's TestMain must call Main, which brings it down.
func Shared(t testing.TB) *sandbox.Sandbox {
	t.Helper()
	available(t)
	mu.Lock()
	defer mu.Unlock()
	if !inMain {
		// Nothing would bring it down: its servers would outlive the tests.
		t.Fatal("sandboxtest.Shared needs the package's TestMain to call sandboxtest.Main")
	}
	if shared == nil {
		sb, err := up(2)
		if err != nil {
			t.Fatalf("sandbox up: %v", err)
		}
		shared = sb
	}
	return shared
}

// Main runs a package's tests and brings the shared sandbox down after.
func Main(m *testing.M) { MainThen(m, nil) }

// MainThen is Main that calls after (to print a summary, say) once the
// tests have run.
func MainThen(m *testing.M, after func()) {
	mu.Lock()
	inMain = true
	mu.Unlock()
	code := m.Run()
	if after != nil {
		after()
	}
	mu.Lock()
	if shared != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := shared.Down(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "sandbox down: %v\n", err)
			code = 1
		}
		cancel()
	}
	mu.Unlock()
	os.Exit(code)
}

// Independent starts a server of a cluster of its own beside sb (see
// Sandbox.StartIndependent) for one test, and stops it when the test ends.
func Independent(t testing.TB, sb *sandbox.Sandbox, name string) sandbox.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := sb.StartIndependent(ctx, name)
	if err != nil {
		t.Fatalf("start an independent cluster %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := sb.StopIndependent(ctx, n, 30*time.Second); err != nil {
			t.Errorf("stop %s: %v", name, err)
		}
	})
	return n
}

// hostsAvailable skips t (or fails it under CI) when a multi-host sandbox
// cannot be brought up here: it needs root.
func hostsAvailable(t testing.TB) {
	t.Helper()
	available(t)
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI is set and the tests do not run as root: a multi-host sandbox (network namespaces, sshd) needs root")
		}
		t.Skip("a multi-host sandbox needs root")
	}
}

// HostsDir returns a fresh path for a multi-host sandbox (named so that a
// scan for servers left behind finds its processes), for a test that
// brings one up itself, through the binary say. It skips t (or fails it
// under CI) when a multi-host sandbox cannot run here.
func HostsDir(t testing.TB) string {
	t.Helper()
	hostsAvailable(t)
	return tempDir(t, "switchover-hosts-test-")
}

// NewHosts brings up a multi-host sandbox (sandbox.Options.Hosts: each node
// and PgBouncer on a host of its own, reached over ssh) with the given
// number of standbys for one test, and brings it down when the test ends.
// Bring up one per package and heal partitions between cases: each takes
// a while to start.
func NewHosts(t testing.TB, standbys int) *sandbox.Sandbox {
	t.Helper()
	dir := HostsDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sb, err := sandbox.Up(ctx, sandbox.Options{Dir: dir, Standbys: standbys, Hosts: true, Log: t.Logf})
	if err != nil {
		t.Fatalf("sandbox up --hosts: %v", err)
	}
	downAtEnd(t, sb)
	return sb
}

// Leftovers lists what a multi-host sandbox left behind after its down: a
// network namespace or link whose name starts with prefix (`ip netns
// list`, `ip -o link`), or a process whose command line mentions dir (a
// scan of /proc). Empty means nothing.
func Leftovers(prefix, dir string) []string {
	var left []string
	for _, args := range [][]string{{"netns", "list"}, {"-o", "link"}} {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			left = append(left, fmt.Sprintf("ip %s: %v: %s", strings.Join(args, " "), err, out))
			continue
		}
		for _, line := range strings.Split(string(out), "\n") {
			if prefix != "" && strings.Contains(line, prefix+"-") {
				left = append(left, strings.TrimSpace(line))
			}
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if cmd := strings.ReplaceAll(string(b), "\x00", " "); dir != "" && strings.Contains(cmd, dir) {
			left = append(left, fmt.Sprintf("process %s: %s", filepath.Base(filepath.Dir(p)), cmd))
		}
	}
	return left
}

// NewMany brings up n sandboxes with the given number of standbys each,
// two at a time, for one test (a fleet of clusters), and brings every one
// down when the test ends, also when another failed to come up.
func NewMany(t testing.TB, n, standbys int) []*sandbox.Sandbox {
	t.Helper()
	available(t)
	out := make([]*sandbox.Sandbox, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for i := range out {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i], errs[i] = up(standbys)
		}(i)
	}
	wg.Wait()
	for _, sb := range out {
		if sb != nil {
			downAtEnd(t, sb)
		}
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("sandbox %d of %d up: %v", i+1, n, err)
		}
	}
	return out
}
