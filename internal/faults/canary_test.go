package faults

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/playbooks/playbookstest"
	"github.com/switchover/switchover/runbook"
)

// A heartbeat deleted behind the canary's back is an acknowledged commit
// lost: the canary reports it and the run fails.
func TestACanaryLostCommitFailsTheRun(t *testing.T) {
	sb := sandboxtest.New(t, 1)
	src := `name: canary-lost
steps:
  - name: start
    action:
      canary.start: {via: direct}
  - name: wait
    action:
      sleep: {for: 300ms}
  - name: lose-one
    action:
      pg.sql: {node: pg1, sql: "DO $$DECLARE t text; BEGIN SELECT relname INTO STRICT t FROM pg_class WHERE relname LIKE 'switchover\\_canary\\_%' AND relkind = 'r'; EXECUTE format('DELETE FROM %I WHERE id = (SELECT min(id) FROM %I)', t, t); END$$"}
finally:
  - name: stop
    action:
      canary.stop: {}
`
	p := playbookstest.PlanFrom(t, sb, "canary-lost.yaml", []byte(src))
	ev := &playbookstest.Events{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := runbook.Run(ctx, p, runbook.Options{Yes: true, Observer: ev, JournalDir: t.TempDir()})
	if !errors.Is(err, runbook.ErrAction) || !strings.Contains(err.Error(), "acknowledged commits are missing") {
		t.Fatalf("run = %v, want a failure for a lost commit\n%s", err, ev.Text())
	}
	facts := map[string]string{}
	for _, e := range ev.All() {
		if e.Fact != nil {
			facts[e.Fact.Key] = e.Fact.Value
		}
	}
	if facts["canary.lost"] != "1" || facts["canary.lost_ids"] == "" || facts["canary.acked"] == "0" {
		t.Fatalf("canary facts %v, want 1 lost with its id", facts)
	}
}
