package checks

import (
	"fmt"
	"testing"

	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

func TestPgBSameMajorVersionOnShared(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Shared(t)
	tg := pgBTarget(sb)
	major, err := pgBQueryString(sb, pgBNode(t, sb, "pg1"), "SELECT (current_setting('server_version_num')::int / 10000)::text")
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range []map[string]any{{}, {"nodes": []string{"pg1", "pg3"}}} {
		t.Run(fmt.Sprint(raw), func(t *testing.T) {
			t.Parallel()
			c := mustBuild(t, "pg.same_major_version", raw)
			r := pgBRun(t, c, tg)
			want := []string{"pg1=" + major + ".", "pg3=" + major + ".", "major " + major + " on every node"}
			var avoid []string
			if len(raw) == 0 {
				want = append(want, "pg2="+major+".")
			} else {
				avoid = []string{"pg2"}
			}
			assertResult(t, r, Pass, want, avoid)
			if v, ok := r.Values["versions"].(map[string]int); !ok || v["pg1"]/10000 != v["pg3"]/10000 || v["pg1"] == 0 {
				t.Errorf("values versions = %v", r.Values["versions"])
			}
		})
	}
}

func TestPgBVersionText(t *testing.T) {
	t.Parallel()
	for num, want := range map[int][2]string{150008: {"15.8", "15"}, 100023: {"10.23", "10"}, 90624: {"9.6.24", "9.6"}, 170000: {"17.0", "17"}} {
		if got := [2]string{pgBVersion(num), pgBMajor(num)}; got != want {
			t.Errorf("version text of %d = %v, want %v", num, got, want)
		}
	}
}

func TestPgBSameMajorVersionDescribe(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		raw  map[string]any
		want string
	}{
		{map[string]any{}, "all nodes run the same PostgreSQL major version"},
		{map[string]any{"nodes": []string{"pg1", " pg2", "pg1"}}, "pg1, pg2 run the same PostgreSQL major version"},
	} {
		if got := mustBuild(t, "pg.same_major_version", tc.raw).Describe(nil); got != tc.want {
			t.Errorf("describe %v = %q, want %q", tc.raw, got, tc.want)
		}
	}
}
