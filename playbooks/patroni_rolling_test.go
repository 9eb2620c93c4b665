package playbooks_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/playbooks/playbookstest"
	"github.com/switchover/switchover/runbook"
)

// postmasterStart is when the node's PostgreSQL last started.
func postmasterStart(t *testing.T, sb *sandbox.Sandbox, name string) time.Time {
	t.Helper()
	c := sandboxtest.Connect(t, sb, name, "postgres")
	defer c.Close(context.Background())
	var at time.Time
	if err := c.QueryRow(context.Background(), "SELECT pg_postmaster_start_time()").Scan(&at); err != nil {
		t.Fatalf("%s: pg_postmaster_start_time(): %v", name, err)
	}
	return at
}

// The monthly patch, pg1 leader, candidate pg2: the replicas pg2 and pg3
// restarted through Patroni one at a time, a switchover, then pg1 restarted
// as pg2's replica; pg2 leads after, pg1 streams from it, all three servers
// started anew during the run, no acknowledged heartbeat lost.
func TestPatroniRollingRestart(t *testing.T) {
	sb := patroniSandbox(t)
	client := patroniClient(t, sb)
	pg2 := sandboxtest.Node(t, sb, "pg2")
	for _, n := range []string{"pg1", "pg2", "pg3"} {
		postmasterStart(t, sb, n) // every server answers before the run
	}
	runStart := time.Now()

	ev, err := playbookstest.Run(t, sb, "patroni-rolling-restart", false, "patch_command=echo patched")
	if err != nil {
		t.Fatalf("rolling restart pg1 -> pg2: %v\n%s", err, ev.Text())
	}
	if got := patroniLeaders(t, client); got != "pg2 pg2 pg2" {
		t.Errorf("after: patroni leaders per member = %q, want pg2 in every view", got)
	}
	topo := sandboxtest.Topology(t, sb)
	if want1 := fmt.Sprintf("pg1=standby<%d/", pg2.Port); !strings.Contains(topo, "pg2=primary/") || !strings.Contains(topo, want1) {
		t.Errorf("after: topology %s, want pg2 primary and pg1 streaming from it (%s...)", topo, want1)
	}
	for _, n := range []string{"pg1", "pg2", "pg3"} {
		if at := postmasterStart(t, sb, n); !at.After(runStart) {
			t.Errorf("%s postmaster started %s, before the run started %s: not restarted", n, at, runStart)
		}
	}
	if f := ev.Facts(); f["canary.lost"] != "0" {
		t.Errorf("canary facts %v, want canary.lost 0", f)
	}
	out := ev.Output()
	if n := strings.Count(out, ": patched\n"); n != 3 {
		t.Errorf("the patch command ran %d times, want 3 (pg2, pg3, pg1):\n%s", n, out)
	}
	// One replica at a time: pg2 streams again before pg3's restart is asked.
	at := 0
	for _, w := range []string{"restart-replicas: pg2 (1 of 2): starting", "restart-replicas: patroni: POST ",
		"restart-replicas: pg2 streams from pg1 again", "restart-replicas: pg3 (2 of 2): starting",
		"restart-replicas: patroni: POST ", "restart-replicas: pg3 streams from pg1 again"} {
		i := strings.Index(out[at:], w)
		if i < 0 {
			t.Errorf("the run's output lacks %q after position %d, so the replicas were not restarted one at a time:\n%s", w, at, out)
			break
		}
		at += i + len(w)
	}
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "restart-replicas: ") {
			lines = append(lines, l)
		}
	}
	t.Logf("after the rolling restart: %s; canary %v\n  %s", topo, ev.Facts(), strings.Join(lines, "\n  "))
}

const pauseResumeRunbook = `name: patroni-pause-resume
description: Pause Patroni, fail, and resume it in finally.
steps:
  - name: pause
    action:
      patroni.pause: {}
  - name: fail
    action:
      exec: {command: "exit 1"}
finally:
  - name: resume
    idempotent: true
    action:
      patroni.resume: {}
`

// Pause/resume round trip: a run that pauses Patroni and then fails still
// resumes it in finally.
func TestPatroniPauseResumeAfterAFailure(t *testing.T) {
	sb := patroniSandbox(t)
	client := patroniClient(t, sb)
	p := playbookstest.PlanFrom(t, sb, "inline:pause-resume", []byte(pauseResumeRunbook))
	ev := &playbookstest.Events{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := runbook.Run(ctx, p, runbook.Options{Yes: true, Observer: ev, JournalDir: t.TempDir()})
	if !errors.Is(err, runbook.ErrAction) {
		t.Fatalf("run = %v, want an action failure\n%s", err, ev.Text())
	}
	if !strings.Contains(ev.Text(), `"pause": true`) || !strings.Contains(ev.Text(), `"pause": false`) {
		t.Errorf("the output does not show the pause and the resume:\n%s", ev.Text())
	}
	cfg, err := client.Config(ctx)
	if err != nil {
		t.Fatalf("GET /config: %v", err)
	}
	if cfg.Pause {
		t.Errorf("GET %s shows \"pause\": true after the failed run; want it resumed by finally", cfg.URL)
	}
}
