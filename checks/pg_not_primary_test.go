package checks

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/transport"
)

// pg.not_primary on running nodes and on stopped ones, whose control file
// decides: a standby stopped cleanly passes; a stopped primary, a promoted
// standby that went down, and a standby whose standby.signal is gone fail.
func TestPGNotPrimary(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	tg := sandboxTarget(sb)
	check := func(node string) Check { return mustBuild(t, "pg.not_primary", map[string]any{"node": node}) }

	assertResult(t, runCheck(t, check("pg2"), tg), Pass, []string{"pg2 is a standby (in recovery)"}, nil)
	assertResult(t, runCheck(t, check("pg1"), tg), Fail, []string{"pg1 is a primary"}, nil)
	assertResult(t, runCheck(t, check("pg9"), tg), Error, []string{`"pg9" is not in the inventory`}, nil)

	// A standby stopped cleanly never finished a promotion.
	stopNode(t, sb, "pg2")
	assertResult(t, runCheck(t, check("pg2"), tg), Pass,
		[]string{"pg2 does not answer", `"shut down in recovery"`, "standby.signal", "comes back as a standby"}, nil)

	// The same, without its standby.signal: started, it would be a primary.
	signal := filepath.Join(sandboxNode(t, sb, "pg2").DataDir, "standby.signal")
	sh(t, sb, "mv "+transport.ShellQuote(signal)+" "+transport.ShellQuote(signal+".away"))
	assertResult(t, runCheck(t, check("pg2"), tg), Fail, []string{`"shut down in recovery"`, "no standby.signal"}, nil)

	// Polled on its host (within:), the same reading fails at the deadline
	// with the same message; and a signal file that comes back during the
	// poll is seen at once, not at the deadline: the host's loop reads
	// pg_controldata's own words.
	poller := check("pg2").(RemotePoller)
	poll := func(d time.Duration) Poll { return Poll{Until: time.Now().Add(d), Every: 20 * time.Millisecond} }
	start := time.Now()
	polled := poller.PollRemote(testCtx(t, 30*time.Second), tg, poll(300*time.Millisecond))
	assertResult(t, polled, Fail, []string{`"shut down in recovery"`, "no standby.signal"}, nil)
	if once := runCheck(t, check("pg2"), tg); polled.Observed != once.Observed || polled.Wanted != once.Wanted {
		t.Errorf("polled: %q (wanted %q); once: %q (wanted %q)", polled.Observed, polled.Wanted, once.Observed, once.Wanted)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("the poll gave up after %s, before its deadline", took)
	}
	back := make(chan error, 1)
	time.AfterFunc(300*time.Millisecond, func() {
		out, err := transport.Local{User: sb.RunAs}.Run(testCtx(t, 10*time.Second),
			"mv "+transport.ShellQuote(signal+".away")+" "+transport.ShellQuote(signal))
		if err == nil && out.ExitCode != 0 {
			err = fmt.Errorf("mv exited %d: %s", out.ExitCode, out.Combined())
		}
		back <- err
	})
	start = time.Now()
	assertResult(t, poller.PollRemote(testCtx(t, 60*time.Second), tg, poll(30*time.Second)), Pass,
		[]string{`"shut down in recovery"`, "standby.signal is in its data directory"}, nil)
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("the poll passed after %s: the host's loop did not see the signal file come back", took)
	}
	if err := <-back; err != nil {
		t.Fatal(err)
	}

	// The old primary, stopped.
	stopNode(t, sb, "pg1")
	assertResult(t, runCheck(t, check("pg1"), tg), Fail, []string{"pg1 does not answer", `"shut down"`, "finished a promotion"}, nil)

	// A standby promoted, then stopped: it would come back as a second primary.
	runSQL(t, sb, "pg3", "SELECT pg_promote(wait => true)")
	assertResult(t, runCheck(t, check("pg3"), tg), Fail, []string{"pg3 is a primary"}, nil)
	stopNode(t, sb, "pg3")
	assertResult(t, runCheck(t, check("pg3"), tg), Fail, []string{"pg3 does not answer", `"shut down"`, "would come back as one"}, nil)
}

// sh runs a shell command as the sandbox servers' OS user.
func sh(t *testing.T, sb *sandbox.Sandbox, cmd string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := transport.Local{User: sb.RunAs}.Run(ctx, cmd)
	if err != nil || out.ExitCode != 0 {
		t.Fatal(fmt.Sprintf("%s: exit %d, %v: %s", cmd, out.ExitCode, err, out.Combined()))
	}
}
