package steps

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

// TestRepointMovesWhatThePauseStaged: a pause told where the repoint goes
// writes the repointed configuration beside the file before clients are
// held; the repoint to that node moves it in place (one command, no
// input), a repoint elsewhere (the rollback's) or a file an operator
// changed since has it removed and writes the file itself. No staged file
// is left behind in any case.
func TestRepointMovesWhatThePauseStaged(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.New(t, 1)
	path := sb.PoolerConfig()
	staged := stagedPath(path)
	pg2, _ := sb.Node("pg2")
	pauseStaging := func(t *testing.T, tg *cluster.Target, p *printed, to string) {
		t.Helper()
		mustApply(t, tg, p, "pgbouncer.pause", map[string]string{"max_wait": "5s", "stage_repoint": to})
		mustApply(t, tg, p, "pgbouncer.resume", nil)
	}
	wantEntry := func(t *testing.T, port int) {
		t.Helper()
		if e := poolerEntry(t, sb); !strings.Contains(e, "port="+strconv.Itoa(port)+" ") {
			t.Errorf("app's entry is %q, want port %d", e, port)
		}
		if _, err := os.Stat(staged); !os.IsNotExist(err) {
			t.Errorf("%s is left behind (%v)", staged, err)
		}
	}
	pg1, _ := sb.Node("pg1")

	t.Run("staged for the node the repoint goes to: moved in place", func(t *testing.T) {
		tg, p := sandboxTarget(sb)
		tg.Session = &cluster.Session{}
		pauseStaging(t, tg, p, "pg2")
		b, err := os.ReadFile(staged)
		if err != nil || !strings.Contains(string(b), "port="+strconv.Itoa(pg2.Port)+" ") {
			t.Fatalf("after the pause, %s: %v, holds:\n%s\nwant app pointing at pg2", staged, err, b)
		}
		out := mustApply(t, tg, p, "pgbouncer.repoint", map[string]string{"to": "pg2"})
		wantLine(t, out, "staged before the pause", "moved in place")
		wantLine(t, out, "pgbouncer routes app to pg2")
		wantEntry(t, pg2.Port)
	})

	t.Run("staged for another node: removed, the file written", func(t *testing.T) {
		tg, p := sandboxTarget(sb)
		tg.Session = &cluster.Session{}
		pauseStaging(t, tg, p, "pg2") // app points at pg2 already: nothing to stage
		if _, err := os.Stat(staged); !os.IsNotExist(err) {
			t.Fatalf("a pause staged a configuration that changes nothing: %v", err)
		}
		mustApply(t, tg, p, "pgbouncer.repoint", map[string]string{"to": "pg1"})
		tg, p = sandboxTarget(sb)
		tg.Session = &cluster.Session{}
		pauseStaging(t, tg, p, "pg2")
		out := mustApply(t, tg, p, "pgbouncer.repoint", map[string]string{"to": "pg1"})
		for _, l := range out {
			if strings.Contains(l, "moved in place") {
				t.Errorf("a configuration staged for pg2 was used for a repoint to pg1: %s", l)
			}
		}
		wantEntry(t, pg1.Port)
	})

	t.Run("the file changed since the pause: read again, written", func(t *testing.T) {
		tg, p := sandboxTarget(sb)
		tg.Session = &cluster.Session{}
		pauseStaging(t, tg, p, "pg2")
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString("; an operator's line\n"); err != nil {
			t.Fatal(err)
		}
		f.Close()
		out := mustApply(t, tg, p, "pgbouncer.repoint", map[string]string{"to": "pg2"})
		wantLine(t, out, "changed since the pause read it; reading it again")
		wantEntry(t, pg2.Port)
		if b, _ := os.ReadFile(path); !strings.Contains(string(b), "; an operator's line") {
			t.Errorf("the operator's line is gone:\n%s", b)
		}
	})
}
