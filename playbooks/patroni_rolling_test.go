package playbooks_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/runbook"
)

// postmasterStart is when the node's PostgreSQL last started.
func postmasterStart(t *testing.T, sb *sandbox.Sandbox, name string) time.Time {
	t.Helper()
	c := connect(t, sb, name, "postgres")
	defer c.Close(context.Background())
	var at time.Time
	if err := c.QueryRow(context.Background(), "SELECT pg_postmaster_start_time()").Scan(&at); err != nil {
		t.Fatalf("%s: pg_postmaster_start_time(): %v", name, err)
	}
	return at
}

// The monthly patch pg1 leader, candidate pg2: pg2 and then pg1 restarted
// through Patroni with a switchover between; pg2 leads after, pg1 streams
// from it, both servers started anew, no acknowledged heartbeat lost.
func TestPatroniRollingRestart(t *testing.T) {
	sb := patroniSandbox(t)
	client := patroniClient(t, sb)
	pg2 := node(t, sb, "pg2")
	before1, before2 := postmasterStart(t, sb, "pg1"), postmasterStart(t, sb, "pg2")

	ev, err := run(t, sb, "patroni-rolling-restart", false, "patch_command=echo patched")
	if err != nil {
		t.Fatalf("rolling restart pg1 -> pg2: %v\n%s", err, ev.text())
	}
	if got := patroniLeaders(t, client); got != "pg2 pg2 pg2" {
		t.Errorf("after: patroni leaders per member = %q, want pg2 in every view", got)
	}
	topo := topology(t, sb)
	if want1 := fmt.Sprintf("pg1=standby<%d/", pg2.Port); !strings.Contains(topo, "pg2=primary/") || !strings.Contains(topo, want1) {
		t.Errorf("after: topology %s, want pg2 primary and pg1 streaming from it (%s...)", topo, want1)
	}
	if after := postmasterStart(t, sb, "pg1"); !after.After(before1) {
		t.Errorf("pg1 postmaster started %s, before the run %s: not restarted", after, before1)
	}
	if after := postmasterStart(t, sb, "pg2"); !after.After(before2) {
		t.Errorf("pg2 postmaster started %s, before the run %s: not restarted", after, before2)
	}
	if f := ev.facts(); f["canary.lost"] != "0" {
		t.Errorf("canary facts %v, want canary.lost 0", f)
	}
	if !strings.Contains(ev.text(), "patched") {
		t.Errorf("the patch command's output is not in the run's output:\n%s", ev.text())
	}
	t.Logf("after the rolling restart: %s; canary %v", topo, ev.facts())
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
	p := planFrom(t, sb, "inline:pause-resume", []byte(pauseResumeRunbook))
	ev := &events{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := runbook.Run(ctx, p, runbook.Options{Yes: true, Observer: ev, JournalDir: t.TempDir()})
	if !errors.Is(err, runbook.ErrAction) {
		t.Fatalf("run = %v, want an action failure\n%s", err, ev.text())
	}
	if !strings.Contains(ev.text(), `"pause": true`) || !strings.Contains(ev.text(), `"pause": false`) {
		t.Errorf("the output does not show the pause and the resume:\n%s", ev.text())
	}
	cfg, err := client.Config(ctx)
	if err != nil {
		t.Fatalf("GET /config: %v", err)
	}
	if cfg.Pause {
		t.Errorf("GET %s shows \"pause\": true after the failed run; want it resumed by finally", cfg.URL)
	}
}
