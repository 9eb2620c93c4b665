// Tests of event emission: the journal as a file, and secrets kept out.

package runbook

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"

	"github.com/switchover/switchover/checks"
	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/secret"
)

// assertJournal checks the journal of run id as a file: owner-only, one
// JSON event per line, seq strictly increasing, run.started first.
func assertJournal(t *testing.T, dir, id string) []journal.Event {
	t.Helper()
	path := journal.JournalPath(dir, id)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Errorf("journal mode %v, want 0600", m)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var evs []journal.Event
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		if !json.Valid(sc.Bytes()) {
			t.Fatalf("journal line %d is not JSON: %s", n, sc.Bytes())
		}
		var e journal.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("journal line %d: %v", n, err)
		}
		if len(evs) > 0 && e.Seq <= evs[len(evs)-1].Seq {
			t.Errorf("journal line %d: seq %d after %d, want strictly increasing", n, e.Seq, evs[len(evs)-1].Seq)
		}
		if e.RunID != id {
			t.Errorf("journal line %d: run_id %q, want %q", n, e.RunID, id)
		}
		evs = append(evs, e)
	}
	if len(evs) == 0 {
		t.Fatal("empty journal")
	}
	first := evs[0]
	if first.Type != journal.EventRunStarted || first.Run == nil {
		t.Fatalf("first journal event %+v, want run.started with run info", first)
	}
	if r := first.Run; r.Cluster != testCluster || r.User != "dba" || r.Host != "bastion-1" || r.PID != os.Getpid() ||
		r.RunbookName != "test-switchover" || r.RunbookDigest != "sha256:test-digest" || len(r.Steps) == 0 {
		t.Errorf("run info %+v: want the cluster, runbook, steps and who ran it", *r)
	}
	return evs
}

// TestJournalKeepsSecretsOut: passwords from the variables and the
// inventory never reach the journal or the observer, whatever an action
// prints or a check sees.
func TestJournalKeepsSecretsOut(t *testing.T) {
	t.Parallel()
	const pw, connpw = "s3cr3t-pw", "hunter22"
	l := &callLog{}
	cp := act(l, "checkpoint")
	fake(cp).effect.Node, fake(cp).effect.Command = "pg1", "psql 'host=x password=hunter22' -c CHECKPOINT"
	fake(cp).apply = func(_ context.Context, t *cluster.Target, _ int) error {
		t.Print("connecting with " + pw + " and " + connpw)
		t.Facts.Set("conninfo", "host=x password="+connpw)
		return nil
	}
	cp.Destructive = true
	cp.Requires = []*spec.Cond{cond(&fakeCheck{name: "login", results: []checks.Result{checks.Passed("logged in with " + pw)}})}
	unpause := act(l, "unpause-manager")
	fake(unpause).apply = failing("patroni rejected password " + pw)
	p := withFinally(newPlan(cp), unpause)
	p.Vars["db_password"] = pw
	p.Cluster = &cluster.Cluster{Name: testCluster, Nodes: map[string]*cluster.Node{
		"pg1": {Name: "pg1", Conninfo: "host=x password=" + connpw},
	}}
	rec := &recorder{}
	o := options(t, rec)
	op := &fakeOperator{}
	o.Operator = op
	res, err := Run(context.Background(), p, o)
	if !errors.Is(err, ErrAction) {
		t.Fatalf("Run: %v, want the failing finally step to fail the run", err)
	}
	evs := assertJournal(t, o.JournalDir, res.RunID)
	b, err := os.ReadFile(res.Journal)
	if err != nil {
		t.Fatal(err)
	}
	observed, err := json.Marshal(rec.events())
	if err != nil {
		t.Fatal(err)
	}
	questions, err := json.Marshal(op.asked())
	if err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"journal": string(b), "observed events": string(observed), "operator's questions": string(questions)} {
		for _, s := range []string{pw, connpw} {
			if strings.Contains(text, s) {
				t.Errorf("the %s show the secret %q", what, s)
			}
		}
	}
	if v := evs[0].Run.Vars["db_password"]; v != secret.Mask {
		t.Errorf("journaled db_password = %q, want it masked", v)
	}
	if out := rec.ofType(journal.EventOutput); len(out) != 1 || !strings.Contains(out[0].Output, "connecting with "+secret.Mask) {
		t.Errorf("output events %+v: want the line with the secrets masked", out)
	}
	if fs := rec.ofType(journal.EventFact); len(fs) != 1 || fs[0].Fact.Key != "conninfo" || fs[0].Step != "checkpoint" {
		t.Errorf("fact events %+v: want the conninfo fact of checkpoint", fs)
	}
}
