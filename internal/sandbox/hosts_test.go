package sandbox_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

// A multi-host sandbox whose up fails after its network, namespaces and
// sshds exist (here: cut off right after every host answered over ssh, or,
// under Patroni, once etcd and pg1's Patroni run) leaves nothing behind:
// no namespace, no link, no process, no directory.
func TestHostsUpLeavesNothingAfterAFailure(t *testing.T) {
	for _, c := range []struct {
		name, manager, cutAt string
	}{
		{"plain streaming", "", "hosts "},
		{"patroni", sandbox.ManagerPatroni, "patroni %s: postgres on"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.manager == sandbox.ManagerPatroni {
				if _, _, err := sandbox.FindPatroni(); err != nil && os.Getenv("CI") == "" {
					t.Skipf("no Patroni here: %v", err)
				}
			}
			hostsUpCutOff(t, c.manager, c.cutAt)
		})
	}
}

// hostsUpCutOff cancels a multi-host up the second time it logs a line
// starting with cutAt (the first time for "hosts ") and checks what it
// left.
func hostsUpCutOff(t *testing.T, manager, cutAt string) {
	dir := sandboxtest.HostsDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var mu sync.Mutex
	var prefix string
	var seen int
	want := 1
	if manager != "" {
		want = 2 // pg2's Patroni about to start: pg1's leads
	}
	logf := func(format string, args ...any) {
		t.Logf(format, args...)
		mu.Lock()
		defer mu.Unlock()
		if strings.HasPrefix(format, "network ") && len(args) > 0 {
			prefix, _ = args[len(args)-1].(string)
		}
		if strings.HasPrefix(format, cutAt) {
			if seen++; seen == want {
				cancel()
			}
		}
	}
	sb, err := sandbox.Up(ctx, sandbox.Options{Dir: dir, Hosts: true, Standbys: 1, Manager: manager, Log: logf})
	if err == nil {
		_ = sb.Down(context.Background())
		t.Fatal("sandbox up --hosts succeeded with its context cancelled half-way")
	}
	t.Logf("up failed as meant: %v", err)
	mu.Lock()
	defer mu.Unlock()
	if prefix == "" || seen < want {
		t.Fatalf("up failed before %q was logged %d times (prefix %q): %v", cutAt, want, prefix, err)
	}
	if left := sandboxtest.Leftovers(prefix, dir); len(left) > 0 {
		t.Errorf("a failed up left:\n%s", strings.Join(left, "\n"))
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed up left its directory %s (stat: %v)", dir, err)
	}
}
