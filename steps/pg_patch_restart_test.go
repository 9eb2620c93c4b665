package steps

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

func patchTarget() *cluster.Target {
	c := &cluster.Cluster{Name: "test", Nodes: map[string]*cluster.Node{}}
	for _, n := range []string{"pg1", "pg2", "pg3"} {
		c.Nodes[n] = &cluster.Node{Name: n, Host: cluster.Host{Transport: "local"}, DataDir: "/srv/" + n, BinDir: "/usr/lib/postgresql/15/bin"}
		c.Order = append(c.Order, n)
	}
	return (&printed{}).target(c)
}

func TestPGPatchRestartDescribe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		raw     map[string]string
		want    []string
		notWant []string
		node    string
	}{
		{name: "every standby, in the inventory's order",
			raw: map[string]string{"upstream": "pg1", "patch_command": "apt-get -y install postgresql-15"},
			want: []string{
				"pg1 must answer as a primary, and each of pg2, pg3 as a standby",
				"\n  1. pg2 (local): /bin/sh -c 'apt-get -y install postgresql-15'; then only if the control file in its data_dir has pg2's system identifier: /usr/lib/postgresql/15/bin/pg_ctl restart -D /srv/pg2 -m fast -w -t 60 -l /srv/pg2/switchover-start.log",
				"\n  2. pg3 (local): /bin/sh -c 'apt-get -y install postgresql-15'; then",
				"streams from pg1 with replay at most 16MB behind", "for up to 2m0s from the restart", "fact <node>.restarted_at",
			},
			notWant: []string{"pg1 (local):"}, node: "pg2, pg3"},
		{name: "one node named, no patch",
			raw:     map[string]string{"upstream": "pg2", "nodes": "pg1", "within": "30s", "wait": "10s"},
			want:    []string{"\n  1. pg1 (local): only if the control file", "pg_ctl restart -D /srv/pg1 -m fast -w -t 10 ", "for up to 30s from the restart"},
			notWant: []string{"/bin/sh -c", "pg3"}, node: "pg1"},
		{name: "except leaves a node alone",
			raw:     map[string]string{"upstream": "pg1", "except": "pg3"},
			want:    []string{"\n  1. pg2 (local)"},
			notWant: []string{"2. pg3"}, node: "pg2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := build(t, "pg.patch_restart", tt.raw).Describe(patchTarget())
			for _, w := range tt.want {
				if !strings.Contains(d.Command, w) {
					t.Errorf("describe command lacks %q:\n%s", w, d.Command)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(d.Command, w) {
					t.Errorf("describe command has %q:\n%s", w, d.Command)
				}
			}
			if d.Node != tt.node || !strings.Contains(d.Changes, "is not restarted") {
				t.Errorf("describe = %+v, want node %q", d, tt.node)
			}
		})
	}
}

func TestPGPatchRestartParams(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw  map[string]string
		want string
	}{
		{map[string]string{}, `"upstream"`},
		{map[string]string{"upstream": "pg1", "within": "0s"}, `"within" must be more than 0`},
		{map[string]string{"upstream": "pg1", "wait": "0s"}, `"wait" must be more than 0`},
	}
	for _, tt := range tests {
		if _, err := tryBuild("pg.patch_restart", tt.raw); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: err = %v, want %q", tt.raw, err, tt.want)
		}
	}
	d, _ := Lookup("pg.patch_restart")
	v, probs := params.Decode(d.Params, map[string]params.Raw{"upstream": {Scalar: "pg1"}, "nodes": {List: []string{"pg2", "pg1"}, IsList: true}})
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	if _, err := d.New(v); err == nil || !strings.Contains(err.Error(), "a primary is never restarted by this step") {
		t.Errorf("upstream among the nodes: err = %v", err)
	}
}

func TestSameAddress(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want bool
	}{
		{"10.0.0.1:5432", "10.0.0.1:5432", true},
		{"127.0.0.1:5432", "localhost:5432", true},
		{"DB1.example:5432", "db1.example:5432", true},
		{"10.0.0.1:5432", "10.0.0.1:5433", false},
		{"10.0.0.1:5432", "10.0.0.2:5432", false},
		{"", "10.0.0.1:5432", false},
		{"[::1]:5432", "127.0.0.1:5432", true},
	}
	for _, tt := range tests {
		if got := sameAddress(tt.a, tt.b); got != tt.want {
			t.Errorf("sameAddress(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestPGPatchRestart patches and restarts a real standby (pg3 of the
// shared sandbox), then applies the
// step again the way a resumed run would, with what the journal holds: a
// node this run restarted is neither patched nor restarted again, a patch
// done is not run again, a restart done but not recorded is recognised by
// the start time. A step whose upstream is not a primary touches nothing.
func TestPGPatchRestart(t *testing.T) {
	sb := sandboxtest.Shared(t) // not parallel: no other test runs while pg3 restarts
	const mark = "patched-mark"
	start := func(node string) time.Time {
		t.Helper()
		tg, _ := sandboxTarget(sb)
		at, err := postmasterStart(context.Background(), tg, node)
		if err != nil {
			t.Fatal(err)
		}
		return at
	}
	marks := func(lines []string) int {
		n := 0
		for _, l := range lines {
			if l == mark {
				n++
			}
		}
		return n
	}
	raw := map[string]string{"upstream": "pg1", "nodes": "pg3", "patch_command": "echo " + mark, "within": "60s"}

	t.Run("an upstream that is not a primary: nothing touched", func(t *testing.T) {
		before := start("pg1")
		tg, p := sandboxTarget(sb)
		out, err := apply(t, tg, p, "pg.patch_restart", map[string]string{"upstream": "pg2", "nodes": "pg1", "patch_command": "echo " + mark})
		wantErr(t, err, "upstream pg2 is not a primary", "nothing patched or restarted")
		if marks(out) != 0 || !start("pg1").Equal(before) {
			t.Errorf("pg1 patched or restarted although refused: %q", out)
		}
	})

	var facts *cluster.Facts
	t.Run("patched and restarted once", func(t *testing.T) {
		before := start("pg3")
		tg, p := sandboxTarget(sb)
		facts = tg.Facts
		out := mustApply(t, tg, p, "pg.patch_restart", raw)
		if marks(out) != 1 {
			t.Errorf("patch command ran %d times, want once: %q", marks(out), out)
		}
		after := start("pg3")
		if !after.After(before) {
			t.Errorf("pg3 started %s, not after %s: not restarted", after, before)
		}
		at, ok, err := tg.Facts.Restarted("pg3")
		if err != nil || !ok || !at.Equal(after) {
			t.Errorf("fact pg3.restarted_at = %s (%v, %v), want %s", at, ok, err, after)
		}
		for _, k := range []string{PatchBeforeFact("pg3"), PatchedFact("pg3")} {
			if _, ok := tg.Facts.Get(k); !ok {
				t.Errorf("no fact %s", k)
			}
		}
		if _, ok := tg.Facts.Get(cluster.RestartedFact("pg1")); ok {
			t.Error("pg1, the upstream, has a restarted fact")
		}
		wantLine(t, out, "pg3 streams from pg1 again")
	})

	// with starts a target whose facts are those given, as a resume
	// restores them from the journal.
	with := func(kv map[string]string) (*cluster.Target, *printed) {
		tg, p := sandboxTarget(sb)
		for k, v := range kv {
			tg.Facts.Restore(k, v)
		}
		return tg, p
	}

	t.Run("resumed after the restart: neither patched nor restarted again", func(t *testing.T) {
		if facts == nil {
			t.Skip("the first restart failed")
		}
		before := start("pg3")
		at, _ := facts.Get(cluster.RestartedFact("pg3"))
		tg, p := with(map[string]string{cluster.RestartedFact("pg3"): at})
		out := mustApply(t, tg, p, "pg.patch_restart", raw)
		if marks(out) != 0 || !start("pg3").Equal(before) {
			t.Errorf("pg3 patched or restarted again: %q", out)
		}
		wantLine(t, out, "pg3: patched and restarted by this run before it was cut off", "not patched or restarted again")
	})

	t.Run("resumed between the patch and the restart: restarted, not patched again", func(t *testing.T) {
		before := start("pg3")
		tg, p := with(map[string]string{PatchBeforeFact("pg3"): cluster.StartTime(before), PatchedFact("pg3"): "2026-01-01T00:00:00Z"})
		out := mustApply(t, tg, p, "pg.patch_restart", raw)
		if marks(out) != 0 {
			t.Errorf("patch command ran again: %q", out)
		}
		if !start("pg3").After(before) {
			t.Error("pg3 not restarted")
		}
		wantLine(t, out, "pg3: patch command done by this run", "not run again")
	})

	t.Run("resumed after a restart not yet recorded: recorded, not restarted again", func(t *testing.T) {
		before := start("pg3")
		tg, p := with(map[string]string{PatchBeforeFact("pg3"): cluster.StartTime(before.Add(-time.Minute)), PatchedFact("pg3"): "2026-01-01T00:00:00Z"})
		out := mustApply(t, tg, p, "pg.patch_restart", raw)
		if marks(out) != 0 || !start("pg3").Equal(before) {
			t.Errorf("pg3 patched or restarted again: %q", out)
		}
		if at, ok, _ := tg.Facts.Restarted("pg3"); !ok || !at.Equal(before) {
			t.Errorf("fact pg3.restarted_at = %s (%v), want %s", at, ok, before)
		}
	})
}
