package checks

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/transport"
	"github.com/switchover/switchover/internal/transport/sshtest"
)

// TestPollRemoteOverSSH polls an exec check on a host reached over a
// private sshd: the whole poll, five readings, is one ssh command (sshd
// sees one login, with no shared connection to hide more), where running
// the check again for each poll logs in each time.
func TestPollRemoteOverSSH(t *testing.T) {
	t.Parallel()
	server := sshtest.Start(t)
	address, config := server.Host()
	tg := &cluster.Target{Cluster: &cluster.Cluster{Nodes: map[string]*cluster.Node{
		"pg1": {Name: "pg1", Host: cluster.Host{Transport: "ssh", Address: address, SSHConfig: config}}}}}
	logins := func() int { return strings.Count(server.Log.String(), "Accepted publickey for") }
	file := filepath.Join(t.TempDir(), "n")
	f := transport.ShellQuote(file)
	check := &Exec{Node: "pg1",
		Command: fmt.Sprintf(`n=$(( $(cat %s 2>/dev/null || echo 0) + 1 )); echo $n > %s; [ $n -ge 5 ]`, f, f)}

	before := logins()
	r := check.PollRemote(testCtx(t, 30*time.Second), tg, Poll{Until: time.Now().Add(20 * time.Second), Every: 20 * time.Millisecond})
	assertResult(t, r, Pass, []string{"exited 0 on pg1"}, nil)
	b, _ := os.ReadFile(file)
	if n, _ := strconv.Atoi(strings.TrimSpace(string(b))); n != 5 {
		t.Errorf("%d readings, want 5", n)
	}
	// sshd logs a login a moment after it accepts it: wait for the first.
	deadline := time.Now().Add(5 * time.Second)
	for logins() == before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := logins() - before; got != 1 {
		t.Errorf("sshd logged %d logins for one poll of five readings, want 1", got)
	}

	// The same check run once per poll: a login per reading.
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	before = logins()
	for i := 0; i < 2; i++ {
		assertResult(t, check.Run(testCtx(t, 30*time.Second), tg), Fail, []string{"exited 1 on pg1"}, nil)
	}
	deadline = time.Now().Add(5 * time.Second)
	for logins()-before < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := logins() - before; got != 2 {
		t.Errorf("sshd logged %d logins for two runs, want 2", got)
	}
}
