package steps

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

// TestRefenceAfterTheKeeperWroteOverIt: pg_auto_failover's keeper,
// carrying out the monitor's wait_primary, writes its own (empty)
// synchronous_standby_names over the fence's, and an explicit read-write
// transaction on the old primary commits unreplicated again; the
// promotion step fences it again, after which such a commit is not
// acknowledged. A fence that holds is left as it is.
func TestRefenceAfterTheKeeperWroteOverIt(t *testing.T) {
	sb := sandboxtest.New(t, 1)
	tg, _ := sandboxTarget(sb)
	s := &PgafPromotion{Primary: "pg1", Candidate: "pg2"}
	ctx := testCtx(t, time.Minute)
	if err := s.fence(ctx, tg); err != nil {
		t.Fatalf("fence: %v", err)
	}
	if did, err := s.refence(ctx, tg); err != nil || did != "" {
		t.Fatalf("refence with the fence in place = %q, %v; want nothing done", did, err)
	}

	// What the keeper does in wait_primary.
	admin := nodeConn(t, sb, "pg1", "postgres")
	for _, q := range []string{"ALTER SYSTEM SET synchronous_standby_names = ''", "SELECT pg_reload_conf()"} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	eventually(t, 5*time.Second, "pg1 takes the keeper's synchronous_standby_names", func() (bool, string) {
		c := nodeConn(t, sb, "pg1", "postgres")
		defer c.Close(context.Background())
		fenced, err := pg.Fenced(ctx, c)
		return err == nil && !fenced, "still fenced"
	})
	readWrite := func() error {
		c := nodeConn(t, sb, "pg1", "postgres")
		defer c.Close(context.Background())
		wctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		_, err := c.Exec(wctx, "BEGIN READ WRITE; CREATE TABLE IF NOT EXISTS refence_test (id int); INSERT INTO refence_test VALUES (1); COMMIT")
		return err
	}
	if err := readWrite(); err != nil {
		t.Fatalf("the premise: with the keeper's setting an explicit read-write transaction commits, got %v", err)
	}

	did, err := s.refence(ctx, tg)
	if err != nil || !strings.Contains(did, "fenced again") || !strings.Contains(did, "synchronous_standby_names = ''") {
		t.Fatalf("refence after the keeper wrote over the fence = %q, %v; want it fenced again, saying what it found", did, err)
	}
	c := nodeConn(t, sb, "pg1", "postgres")
	if fenced, err := pg.Fenced(ctx, c); err != nil || !fenced {
		t.Fatalf("Fenced after refence = %v, %v", fenced, err)
	}
	c.Close(context.Background())
	if err := readWrite(); err == nil {
		t.Errorf("an explicit read-write transaction was acknowledged on the old primary fenced again")
	}
	if did, err := s.refence(ctx, tg); err != nil || did != "" {
		t.Errorf("refence once more = %q, %v; want nothing done", did, err)
	}
}
