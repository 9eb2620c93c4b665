package runbook

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/runbook/spec"

	"github.com/switchover/switchover/checks"
	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/transport"
)

// runOnly hides that a check is a checks.RemotePoller, so the evaluator
// polls it by running it again, one command per poll.
type runOnly struct{ checks.Check }

// TestEvaluatorPollsOnTheHost: a check that runs a command on a host
// (exec, over the local transport here) and has within: is polled on the
// host, in one command, and comes to the same verdict, with the same
// message, as when it is run again for each poll; without within: it runs
// once either way.
func TestEvaluatorPollsOnTheHost(t *testing.T) {
	t.Parallel()
	// The command counts its readings in a file and holds from the
	// third; "never" never holds.
	command := func(file string, holdsFrom int) string {
		f := transport.ShellQuote(file)
		return fmt.Sprintf(`n=$(( $(cat %s 2>/dev/null || echo 0) + 1 )); echo $n > %s; if [ $n -ge %d ]; then echo holds; else echo "not yet" >&2; exit 4; fi`, f, f, holdsFrom)
	}
	tests := []struct {
		name         string
		holdsFrom    int
		within       time.Duration
		node         string
		wantStatus   checks.Status
		wantObserved string
		wantReadings int // 0: not compared
		wantWaits    int // attempts the remote poll reports; -1: not compared
	}{
		{name: "holds at the third reading", holdsFrom: 3, within: 10 * time.Second,
			wantStatus: checks.Pass, wantObserved: "exited 0 on local", wantReadings: 3, wantWaits: 0},
		{name: "never holds: fails at the deadline with the last reading", holdsFrom: 1 << 30, within: 300 * time.Millisecond,
			wantStatus: checks.Fail, wantObserved: "exited 4 on local: not yet", wantWaits: 0},
		{name: "without within: one reading", holdsFrom: 3, within: 0,
			wantStatus: checks.Fail, wantObserved: "exited 4 on local: not yet", wantReadings: 1, wantWaits: 0},
		{name: "a node not in the inventory is an error, polled again until the deadline", node: "pg9", holdsFrom: 1, within: 200 * time.Millisecond,
			wantStatus: checks.Error, wantObserved: `"pg9" is not in the inventory`, wantWaits: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			verdicts := map[string]verdict{}
			file := filepath.Join(t.TempDir(), "n") // the same command both ways, so the same message
			for _, how := range []string{"on the host", "run again"} {
				if err := os.Remove(file); err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
				var c checks.Check = &checks.Exec{Command: command(file, tt.holdsFrom), Node: tt.node}
				if how == "run again" {
					c = runOnly{c}
				}
				k := within(c, tt.within, 10*time.Millisecond)
				w := &waits{}
				tg := &cluster.Target{Cluster: &cluster.Cluster{Nodes: map[string]*cluster.Node{
					"pg1": {Name: "pg1", Host: cluster.Host{Transport: "local"}}}}}
				ev := &evaluator{target: tg, poll: true, onWait: w.add}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				v := ev.run(ctx, []*spec.Cond{k})[0]
				cancel()
				verdicts[how] = v
				if v.result.Status != tt.wantStatus || !strings.Contains(v.result.Observed, tt.wantObserved) {
					t.Errorf("%s: verdict %s %q, want %s with %q", how, v.result.Status, v.result.Observed, tt.wantStatus, tt.wantObserved)
				}
				if tt.wantReadings > 0 {
					b, _ := os.ReadFile(file)
					if n, _ := strconv.Atoi(strings.TrimSpace(string(b))); n != tt.wantReadings {
						t.Errorf("%s: %d readings, want %d", how, n, tt.wantReadings)
					}
				}
				var announced, failed int // the one wait on the host announced (attempt 0); failed attempts
				for _, n := range w.list() {
					if n == 0 {
						announced++
					} else {
						failed++
					}
				}
				if how == "on the host" && tt.wantWaits >= 0 && failed != tt.wantWaits {
					t.Errorf("%s: %d attempts reported, want %d: the poll ran as several commands", how, failed, tt.wantWaits)
				}
				if wantAnnounced := map[bool]int{true: 1, false: 0}[how == "on the host" && tt.within > 0]; tt.wantWaits >= 0 && announced != wantAnnounced {
					t.Errorf("%s: the wait announced %d times, want %d", how, announced, wantAnnounced)
				}
				if tt.within > 0 && tt.wantStatus != checks.Pass && v.elapsed < tt.within {
					t.Errorf("%s: gave up after %s, before its within: %s", how, v.elapsed, tt.within)
				}
			}
			a, b := verdicts["on the host"].result, verdicts["run again"].result
			if a.Status != b.Status || a.Observed != b.Observed || a.Wanted != b.Wanted {
				t.Errorf("polled on the host: %s %q (wanted %q); run again: %s %q (wanted %q)", a.Status, a.Observed, a.Wanted, b.Status, b.Observed, b.Wanted)
			}
		})
	}
}

// TestEvaluatorInterruptsAPollOnTheHost: the operator's interrupt ends a
// poll running on a host at once, as it ends the wait between two polls.
func TestEvaluatorInterruptsAPollOnTheHost(t *testing.T) {
	t.Parallel()
	interrupt := make(chan struct{})
	ev := &evaluator{target: &cluster.Target{}, poll: true, interrupt: interrupt}
	k := within(&checks.Exec{Command: "exit 1"}, time.Minute, 10*time.Millisecond)
	time.AfterFunc(200*time.Millisecond, func() { close(interrupt) })
	start := time.Now()
	v := ev.run(context.Background(), []*spec.Cond{k})[0]
	if !v.interrupted || v.result.Observed != interruptedObserved {
		t.Errorf("verdict %+v, want interrupted", v)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("the interrupt ended the poll after %s", took)
	}
}
