package checks

import (
	"testing"

	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

func TestSettingsMatchOnShared(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Shared(t)
	tg := sandboxTarget(sb)
	tests := []struct {
		name   string
		raw    map[string]any
		status Status
		want   []string
	}{
		{name: "wal_level is the same everywhere",
			raw:    map[string]any{"settings": []string{"wal_level"}},
			status: Pass, want: []string{"the same on pg1, pg2, pg3: wal_level=replica"}},
		{name: "several settings on two nodes",
			raw:    map[string]any{"nodes": []string{"pg1", "pg2"}, "settings": []string{"wal_level", "max_connections", "synchronous_standby_names"}},
			status: Pass, want: []string{"the same on pg1, pg2: wal_level=replica, max_connections=100, synchronous_standby_names=\"\""}},
		{name: "an unknown setting is an error naming it",
			raw:    map[string]any{"settings": []string{"wal_level", "no_such_setting"}},
			status: Error, want: []string{`setting "no_such_setting" is unknown on pg1, pg2, pg3`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := mustBuild(t, "pg.settings_match", tc.raw)
			assertResult(t, runCheck(t, c, tg), tc.status, tc.want, nil)
		})
	}
}

// TestSettingsMatchDrift changes work_mem on the standby of a sandbox of
// its own and expects the check to name the node and both values.
func TestSettingsMatchDrift(t *testing.T) {
	sb := sandboxtest.New(t, 1)
	tg := sandboxTarget(sb)
	c := mustBuild(t, "pg.settings_match", map[string]any{"settings": []string{"wal_level", "work_mem"}})
	assertResult(t, runCheck(t, c, tg), Pass, []string{"work_mem=4MB"}, nil)

	alterSystem(t, sb, "pg2", "work_mem", "8MB", "8MB")
	r := runCheck(t, c, tg)
	assertResult(t, r, Fail, []string{"1 of 2 settings differ", "work_mem: 4MB on pg1; 8MB on pg2", "pg1=4MB, pg2=8MB",
		"the same value on pg1, pg2 for wal_level, work_mem"}, []string{"wal_level:"})
	settings, _ := r.Values["settings"].(map[string]map[string]string)
	if settings["work_mem"]["pg2"] != "8MB" || settings["work_mem"]["pg1"] != "4MB" {
		t.Errorf("values settings = %v", r.Values["settings"])
	}
}

func TestSettingsMatchNew(t *testing.T) {
	t.Parallel()
	if _, err := build(t, "pg.settings_match", map[string]any{"settings": []string{" ", ""}}); err == nil {
		t.Error("a list of blank setting names was accepted")
	}
	c := mustBuild(t, "pg.settings_match", map[string]any{"settings": []string{"wal_level", "max_connections"}, "nodes": []string{"pg1", "pg2"}})
	if got, want := c.Describe(nil), "wal_level, max_connections have the same values on pg1, pg2"; got != want {
		t.Errorf("describe = %q, want %q", got, want)
	}
}

func TestGroupByValue(t *testing.T) {
	t.Parallel()
	got := groupByValue([]string{"pg1", "pg2", "pg3"}, map[string]string{"pg1": "8MB", "pg2": "4MB", "pg3": "4MB"})
	if len(got) != 2 || got[0].value != "4MB" || len(got[0].nodes) != 2 || got[1].value != "8MB" || got[1].nodes[0] != "pg1" {
		t.Errorf("groups = %+v, want 4MB on pg2, pg3 first, then 8MB on pg1", got)
	}
}
