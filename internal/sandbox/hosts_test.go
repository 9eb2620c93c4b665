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
// sshds exist (here: cut off right after every host answered over ssh)
// leaves nothing behind: no namespace, no link, no process, no directory.
func TestHostsUpLeavesNothingAfterAFailure(t *testing.T) {
	dir := sandboxtest.HostsDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var mu sync.Mutex
	var prefix string
	var sawHosts bool
	logf := func(format string, args ...any) {
		t.Logf(format, args...)
		mu.Lock()
		defer mu.Unlock()
		if strings.HasPrefix(format, "network ") && len(args) > 0 {
			prefix, _ = args[len(args)-1].(string)
		}
		if strings.HasPrefix(format, "hosts ") {
			sawHosts = true
			cancel()
		}
	}
	sb, err := sandbox.Up(ctx, sandbox.Options{Dir: dir, Hosts: true, Standbys: 1, Log: logf})
	if err == nil {
		_ = sb.Down(context.Background())
		t.Fatal("sandbox up --hosts succeeded with its context cancelled half-way")
	}
	t.Logf("up failed as meant: %v", err)
	mu.Lock()
	defer mu.Unlock()
	if prefix == "" || !sawHosts {
		t.Fatalf("up failed before its hosts answered over ssh (prefix %q): %v", prefix, err)
	}
	if left := sandboxtest.Leftovers(prefix, dir); len(left) > 0 {
		t.Errorf("a failed up left:\n%s", strings.Join(left, "\n"))
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed up left its directory %s (stat: %v)", dir, err)
	}
}
