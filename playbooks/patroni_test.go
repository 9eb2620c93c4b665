package playbooks_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/patroni"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/playbooks/playbookstest"
	"github.com/switchover/switchover/runbook"
)

const patroniSwitchover = "patroni-switchover"

// patroniSandbox brings up a sandbox managed by Patroni and etcd, pg1 the
// leader and two replicas, and brings it down when the test ends.
func patroniSandbox(t *testing.T) *sandbox.Sandbox {
	t.Helper()
	return sandboxtest.NewPatroni(t, 2)
}

func patroniClient(t *testing.T, sb *sandbox.Sandbox) *patroni.Client {
	t.Helper()
	c, err := patroni.New(sb.Cluster().Manager)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// patroniLeaders is what each member's /cluster names as the leader, e.g.
// "pg2 pg2 pg2"; a view with other than one running leader shows as such.
func patroniLeaders(t *testing.T, c *patroni.Client) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []string
	for _, v := range c.ClusterEach(ctx) {
		if v.Err != nil {
			out = append(out, "error("+v.Err.Error()+")")
			continue
		}
		l := v.State.Leaders()
		if len(l) != 1 || !l[0].SettledLeader() {
			out = append(out, fmt.Sprintf("bad(%s)", v.State))
			continue
		}
		out = append(out, l[0].Name)
	}
	return strings.Join(out, " ")
}

// A Patroni switchover pg1 -> pg2 through the playbook, with the canary:
// one leader after, pg2, in Patroni's view and PostgreSQL's; pg1 streams
// from pg2; no acknowledged heartbeat lost; writes through PgBouncer land on
// pg2. Then a lock held on the candidate (pg1, for pg2 -> pg1) stops the run
// at preflight with no action run and Patroni left unpaused.
func TestPatroniSwitchover(t *testing.T) {
	sb := patroniSandbox(t)
	client := patroniClient(t, sb)
	pg1, pg2 := sandboxtest.Node(t, sb, "pg1"), sandboxtest.Node(t, sb, "pg2")
	if got := sandboxtest.WriteThroughPooler(t, sb); got != pg1.Port {
		t.Fatalf("before: the pooler wrote to port %d, want pg1 (%d)", got, pg1.Port)
	}

	ev, err := playbookstest.Run(t, sb, patroniSwitchover, false)
	if err != nil {
		t.Fatalf("patroni switchover pg1 -> pg2: %v\n%s", err, ev.Text())
	}
	if got := patroniLeaders(t, client); got != "pg2 pg2 pg2" {
		t.Errorf("after: patroni leaders per member = %q, want pg2 in every view", got)
	}
	topo := sandboxtest.Topology(t, sb)
	want1 := fmt.Sprintf("pg1=standby<%d/", pg2.Port)
	if !strings.Contains(topo, "pg2=primary/") || strings.Count(topo, "=primary/") != 1 || !strings.Contains(topo, want1) {
		t.Errorf("after: topology %s, want pg2 the only primary and pg1 streaming from it (%s...)", topo, want1)
	}
	if f := ev.Facts(); f["canary.lost"] != "0" {
		t.Errorf("canary facts %v, want canary.lost 0", f)
	}
	if got := sandboxtest.WriteThroughPooler(t, sb); got != pg2.Port {
		t.Errorf("after: the pooler wrote to port %d, want pg2 (%d)", got, pg2.Port)
	}
	t.Logf("after the switchover: %s; canary %v", topo, ev.Facts())

	// pg1 is now the candidate for pg2 -> pg1; a session there holds a lock.
	holder := sandboxtest.Connect(t, sb, "pg1", "app")
	if _, err := holder.Exec(context.Background(), "SELECT pg_advisory_lock(4242)"); err != nil {
		t.Fatal(err)
	}
	before := sandboxtest.Topology(t, sb)
	ev, err = playbookstest.Run(t, sb, patroniSwitchover, false, "primary=pg2", "candidate=pg1")
	if !errors.Is(err, runbook.ErrPrecondition) {
		t.Fatalf("run with a lock on the candidate: %v, want a precondition failure (exit 3)\n%s", err, ev.Text())
	}
	if got := ev.ActionsRun(); len(got) != 0 {
		t.Fatalf("actions ran: %v, want none\n%s", got, ev.Text())
	}
	if !strings.Contains(ev.Text(), "advisory") || !strings.Contains(ev.Text(), "pg.no_blocking_sessions fail") {
		t.Errorf("the output does not name the blocking session:\n%s", ev.Text())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := client.Config(ctx)
	if err != nil {
		t.Fatalf("GET /config: %v", err)
	}
	if cfg.Pause {
		t.Errorf("GET %s shows \"pause\": true after the stopped run; want Patroni unpaused as it was found", cfg.URL)
	}
	if got := patroniLeaders(t, client); got != "pg2 pg2 pg2" {
		t.Errorf("after the stopped run: patroni leaders per member = %q, want pg2 in every view", got)
	}
	if got := sandboxtest.Topology(t, sb); got != before {
		t.Errorf("topology changed: %s, was %s", got, before)
	}
	holder.Close(context.Background())
}

const scheduledRunbook = `name: patroni-scheduled-switchover
description: A switchover Patroni performs at a given time.
vars:
  at: ~
steps:
  - name: switchover
    destructive: true
    action:
      patroni.switchover: {leader: pg1, candidate: pg2, scheduled_at: "${at}", within: 30s}
`

// A switchover scheduled a few seconds ahead (scheduled_at): Patroni
// accepts it at once (202), pg1 still leads shortly before the time, and
// the step follows it to pg2 leading and taking writes, not before the
// time.
func TestPatroniScheduledSwitchover(t *testing.T) {
	sb := patroniSandbox(t)
	client := patroniClient(t, sb)
	at := time.Now().Add(5 * time.Second).Truncate(time.Second).UTC()
	p := playbookstest.PlanFrom(t, sb, "inline:scheduled", []byte(scheduledRunbook), "at="+at.Format(time.RFC3339))
	// What Patroni shows a little before the time.
	early := make(chan string, 1)
	go func() {
		time.Sleep(time.Until(at.Add(-1500 * time.Millisecond)))
		early <- patroniLeaders(t, client)
	}()
	ev := &playbookstest.Events{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := runbook.Run(ctx, p, runbook.Options{Yes: true, Observer: ev, JournalDir: t.TempDir()})
	ended := time.Now()
	if err != nil {
		t.Fatalf("scheduled switchover: %v\n%s", err, ev.Text())
	}
	if got := <-early; got != "pg1 pg1 pg1" {
		t.Errorf("1.5s before the scheduled time, patroni leaders per member = %q, want pg1 still", got)
	}
	if ended.Before(at) {
		t.Errorf("the step ended at %s, before the scheduled time %s", ended.Format(time.RFC3339Nano), at.Format(time.RFC3339))
	}
	t.Logf("scheduled for %s, ended %s:\n%s", at.Format(time.RFC3339), ended.Format(time.RFC3339Nano), ev.Text())
	if !strings.Contains(ev.Text(), "scheduled") || !strings.Contains(ev.Text(), "pg2 leads") {
		t.Errorf("the output does not show Patroni's acceptance and pg2 leading:\n%s", ev.Text())
	}
	if got := patroniLeaders(t, client); got != "pg2 pg2 pg2" {
		t.Errorf("after: patroni leaders per member = %q, want pg2 in every view", got)
	}
}
