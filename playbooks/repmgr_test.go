package playbooks_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/switchover/switchover/checks"
	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/repmgr"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/playbooks"
	"github.com/switchover/switchover/playbooks/playbookstest"
	"github.com/switchover/switchover/steps"
)

const repmgrSwitchover = "repmgr-switchover"

// shipped decodes a shipped playbook into plain YAML values.
func shipped(t *testing.T, name string) map[string]any {
	t.Helper()
	src, ok := playbooks.Read(name)
	if !ok {
		t.Fatalf("no playbook %s", name)
	}
	var out map[string]any
	if err := yaml.Unmarshal(src, &out); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return out
}

func stepNames(steps []any) []string {
	var out []string
	for _, s := range steps {
		out = append(out, s.(map[string]any)["name"].(string))
	}
	return out
}

// The repmgr playbook is the streaming playbook's guarded switchover with
// repmgr's steps around it: its variables, defaults, rollback, every main
// step and every finally step of the streaming playbook are there word for
// word and in the same order, so the two cannot drift apart.
func TestRepmgrPlaybookKeepsTheStreamingSteps(t *testing.T) {
	t.Parallel()
	stream, rm := shipped(t, playbookstest.Streaming), shipped(t, repmgrSwitchover)
	for _, key := range []string{"vars", "defaults", "rollback"} {
		if !reflect.DeepEqual(stream[key], rm[key]) {
			t.Errorf("%s differs from %s's:\n%v\nwant\n%v", key, playbookstest.Streaming, rm[key], stream[key])
		}
	}
	for _, section := range []string{"steps", "finally"} {
		want, got := stream[section].([]any), rm[section].([]any)
		// The streaming steps appear as one run, in order.
		start := -1
		for i, s := range got {
			if reflect.DeepEqual(s, want[0]) {
				start = i
			}
		}
		if start < 0 || start+len(want) > len(got) {
			t.Errorf("%s: %s's %s do not start in %s (%v)", section, playbookstest.Streaming, stepNames(want), repmgrSwitchover, stepNames(got))
			continue
		}
		for i, w := range want {
			if !reflect.DeepEqual(got[start+i], w) {
				t.Errorf("%s: step %d is %v, want %s's %v", section, start+i, got[start+i], playbookstest.Streaming, w)
			}
		}
		var extra []string
		for i, s := range got {
			if i < start || i >= start+len(want) {
				extra = append(extra, s.(map[string]any)["name"].(string))
			}
		}
		wantExtra := map[string][]string{"steps": {"repmgr-preflight", "pause-repmgrd", "register-with-repmgr"}, "finally": {"repmgrd-unpaused"}}[section]
		if !reflect.DeepEqual(extra, wantExtra) {
			t.Errorf("%s: repmgr's own steps are %v, want %v", section, extra, wantExtra)
		}
	}
}

// repmgrView reads repmgr's view of the sandbox and whether it agrees with
// PostgreSQL (repmgr.agrees, as the playbook checks it).
func repmgrAgrees(t *testing.T, sb *sandbox.Sandbox) (checks.Result, *repmgr.View) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := sb.Cluster()
	r := (&checks.RepmgrAgrees{}).Run(ctx, &cluster.Target{Cluster: c})
	return r, repmgr.Read(ctx, c, "")
}

// daemons says for each node whether repmgrd is paused, e.g. "pg1=run pg2=paused".
func daemons(v *repmgr.View) string {
	var out []string
	for _, d := range v.Daemons {
		s := "run"
		switch {
		case d.Error != "":
			s = "error(" + d.Error + ")"
		case d.Paused:
			s = "paused"
		}
		out = append(out, d.Node+"="+s)
	}
	return strings.Join(out, " ")
}

// A repmgr switchover pg1 -> pg2 and back with the playbook: each time one
// primary, the others streaming from it, no acknowledged heartbeat lost,
// repmgr registering the new shape (repmgr.agrees passes) and repmgrd
// unpaused on every node after. Then a registration edited by hand is named
// by repmgr.agrees and refuses the run before anything changes.
func TestRepmgrSwitchover(t *testing.T) {
	sb := sandboxtest.NewRepmgr(t, 2)
	pg1, pg2 := sandboxtest.Node(t, sb, "pg1"), sandboxtest.Node(t, sb, "pg2")
	if r, _ := repmgrAgrees(t, sb); r.Status != checks.Pass {
		t.Fatalf("before: repmgr.agrees %s: %s", r.Status, r.Observed)
	}
	for _, c := range []struct {
		from, to sandbox.Node
	}{{pg1, pg2}, {pg2, pg1}} {
		ev, err := playbookstest.Run(t, sb, repmgrSwitchover, false, "primary="+c.from.Name, "candidate="+c.to.Name)
		if err != nil {
			t.Fatalf("repmgr switchover %s -> %s: %v\n%s", c.from.Name, c.to.Name, err, ev.Text())
		}
		topo := sandboxtest.Topology(t, sb)
		if !strings.Contains(topo, c.to.Name+"=primary/") || strings.Count(topo, "=primary/") != 1 ||
			strings.Count(topo, fmt.Sprintf("=standby<%d/", c.to.Port)) != 2 {
			t.Errorf("after %s -> %s: topology %s, want %s the only primary and both others streaming from it", c.from.Name, c.to.Name, topo, c.to.Name)
		}
		f := ev.Facts()
		if f["canary.lost"] != "0" {
			t.Errorf("after %s -> %s: canary facts %v, want canary.lost 0", c.from.Name, c.to.Name, f)
		}
		if f[steps.RepmgrPausedFact] != "no" {
			t.Errorf("after %s -> %s: %s = %q, want no (paused, then unpaused by the run)", c.from.Name, c.to.Name, steps.RepmgrPausedFact, f[steps.RepmgrPausedFact])
		}
		r, v := repmgrAgrees(t, sb)
		if r.Status != checks.Pass || v.Primary() != c.to.Name {
			t.Errorf("after %s -> %s: repmgr.agrees %s: %s (%s); repmgr's primary %q", c.from.Name, c.to.Name, r.Status, r.Observed, v, v.Primary())
		}
		if got := daemons(v); strings.Contains(got, "paused") || strings.Contains(got, "error") {
			t.Errorf("after %s -> %s: repmgrd %s, want unpaused on every node", c.from.Name, c.to.Name, got)
		}
		if got := sandboxtest.WriteThroughPooler(t, sb); got != c.to.Port {
			t.Errorf("after %s -> %s: the pooler wrote to port %d, want %d", c.from.Name, c.to.Name, got, c.to.Port)
		}
		t.Logf("%s -> %s: %s; repmgr %s; canary %v", c.from.Name, c.to.Name, topo, v, f)
	}

	// pg3 registered under pg2 while it streams from pg1: named, and the
	// run stops at its first step with nothing changed, repmgrd untouched.
	conn := sandboxtest.Connect(t, sb, "pg1", "repmgr")
	if _, err := conn.Exec(context.Background(), "UPDATE repmgr.nodes SET upstream_node_id = 2 WHERE node_name = 'pg3'"); err != nil {
		t.Fatal(err)
	}
	r, _ := repmgrAgrees(t, sb)
	if r.Status != checks.Fail || !strings.Contains(r.Observed, "pg3: repmgr has its upstream as pg2, it streams from pg1") {
		t.Errorf("after editing pg3's upstream: repmgr.agrees %s: %s; want a failure naming pg3", r.Status, r.Observed)
	}
	ev, err := playbookstest.Run(t, sb, repmgrSwitchover, false, "primary=pg1", "candidate=pg2")
	if err == nil || len(ev.ActionsRun()) != 0 {
		t.Errorf("a run with pg3 misregistered: err %v, actions %v; want refused with none\n%s", err, ev.ActionsRun(), ev.Text())
	}
	if _, v := repmgrAgrees(t, sb); strings.Contains(daemons(v), "paused") {
		t.Errorf("after the refused run: repmgrd %s, want unpaused", daemons(v))
	}
}
