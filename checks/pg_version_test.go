package checks

import (
	"fmt"
	"testing"

	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

func TestSameMajorVersionOnShared(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Shared(t)
	tg := sandboxTarget(sb)
	major, err := queryString(sb, sandboxNode(t, sb, "pg1"), "SELECT (current_setting('server_version_num')::int / 10000)::text")
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range []map[string]any{{}, {"nodes": []string{"pg1", "pg3"}}} {
		t.Run(fmt.Sprint(raw), func(t *testing.T) {
			t.Parallel()
			c := mustBuild(t, "pg.same_major_version", raw)
			r := runCheck(t, c, tg)
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

func TestSameMajorVersionDescribe(t *testing.T) {
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
