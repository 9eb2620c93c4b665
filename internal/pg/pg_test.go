package pg_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

func TestMain(m *testing.M) { sandboxtest.Main(m) }

func TestParseLSN(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]pg.LSN{"0/0": 0, "0/3000148": 0x3000148, "1/0": 1 << 32, "A/FF": 0xA<<32 | 0xFF} {
		got, err := pg.ParseLSN(in)
		if err != nil || got != want || got.String() != strings.ToUpper(in) {
			t.Errorf("ParseLSN(%q) = %v (%s), %v; want %v", in, got, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "x/1", "0/1/2", "100000000/0"} {
		if _, err := pg.ParseLSN(bad); err == nil {
			t.Errorf("ParseLSN(%q): no error", bad)
		}
	}
}

func TestInspectAndBlockingSessions(t *testing.T) {
	sb := sandboxtest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pg1, _ := sb.Node("pg1")
	pg2, _ := sb.Node("pg2")
	p, err := pg.Connect(ctx, sb.Conninfo(pg1, "postgres"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	st, err := pg.Inspect(ctx, p)
	if err != nil || st.Role != pg.RolePrimary || st.Timeline != 1 || st.CurrentLSN == 0 || st.Major() < 10 {
		t.Fatalf("Inspect(pg1) = %+v, %v; want a primary on timeline 1", st, err)
	}
	s, err := pg.Connect(ctx, sb.Conninfo(pg2, "postgres"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	st2, err := pg.Inspect(ctx, s)
	if err != nil || st2.Role != pg.RoleStandby || !st2.Streaming || st2.Upstream != "127.0.0.1:"+itoa(pg1.Port) || st2.SlotName != "pg2" {
		t.Fatalf("Inspect(pg2) = %+v, %v; want a standby streaming from pg1 through slot pg2", st2, err)
	}

	// A session on the standby holding an advisory lock is listed, with it.
	holder, err := pg.Connect(ctx, sb.Conninfo(pg2, "postgres"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	if _, err := holder.Exec(ctx, "SELECT pg_advisory_lock(42)"); err != nil {
		t.Fatal(err)
	}
	got, err := pg.BlockingSessions(ctx, s, time.Minute)
	if err != nil || len(got) != 1 || !strings.Contains(got[0].String(), "advisory") {
		t.Fatalf("BlockingSessions with an advisory lock held = %v, %v; want the holder listed", got, err)
	}
	if _, err := holder.Exec(ctx, "SELECT pg_advisory_unlock(42)"); err != nil {
		t.Fatal(err)
	}
	got, err = pg.BlockingSessions(ctx, s, time.Minute)
	if err != nil || len(got) != 0 {
		t.Fatalf("BlockingSessions after unlock = %v, %v; want none", got, err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
