package checks

import (
	"slices"
	"strings"
	"testing"

	conninfopkg "github.com/switchover/switchover/internal/conninfo"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

func TestParseSyncStandbyNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    syncConfig
		wantErr string
	}{
		{in: "", want: syncConfig{Method: syncOff}},
		{in: "   ", want: syncConfig{Method: syncOff}},
		{in: "pg2", want: syncConfig{Method: syncFirst, Num: 1, Names: []string{"pg2"}}},
		{in: "pg2, pg3", want: syncConfig{Method: syncFirst, Num: 1, Names: []string{"pg2", "pg3"}}},
		{in: "*", want: syncConfig{Method: syncFirst, Num: 1, Names: []string{"*"}}},
		{in: "FIRST 1 (pg2)", want: syncConfig{Method: syncFirst, Num: 1, Names: []string{"pg2"}}},
		{in: "first 2 (pg2,pg3, pg4)", want: syncConfig{Method: syncFirst, Num: 2, Names: []string{"pg2", "pg3", "pg4"}}},
		{in: "ANY 1 (pg2, pg3)", want: syncConfig{Method: syncAny, Num: 1, Names: []string{"pg2", "pg3"}}},
		{in: "Any 2(*)", want: syncConfig{Method: syncAny, Num: 2, Names: []string{"*"}}},
		{in: "2 (pg2, pg3)", want: syncConfig{Method: syncFirst, Num: 2, Names: []string{"pg2", "pg3"}}},
		{in: `ANY 1 ("Node A", "say ""hi""", pg3)`, want: syncConfig{Method: syncAny, Num: 1, Names: []string{"Node A", `say "hi"`, "pg3"}}},
		{in: `"first", "any"`, want: syncConfig{Method: syncFirst, Num: 1, Names: []string{"first", "any"}}},
		{in: `FIRST 1 ("*")`, want: syncConfig{Method: syncFirst, Num: 1, Names: []string{"*"}}},
		{in: "1, 2", want: syncConfig{Method: syncFirst, Num: 1, Names: []string{"1", "2"}}},
		{in: "ANY 1 (1, 2)", want: syncConfig{Method: syncAny, Num: 1, Names: []string{"1", "2"}}},
		{in: "\tFIRST\n3 ( a ,b,c )  ", want: syncConfig{Method: syncFirst, Num: 3, Names: []string{"a", "b", "c"}}},
		{in: "ANY 0 (pg2)", wantErr: "must be greater than zero"},
		{in: "FIRST (pg2)", wantErr: "FIRST must be followed by a number"},
		{in: "any pg2", wantErr: "ANY must be followed by a number"},
		{in: "ANY 1 (pg2", wantErr: `lacks its closing ")"`},
		{in: "ANY 1 (pg2,)", wantErr: `want a standby name, got ")"`},
		{in: "pg2,", wantErr: "a standby name is missing"},
		{in: "pg2 pg3", wantErr: `unexpected "pg3"`},
		{in: "ANY 1 (pg2) pg3", wantErr: `unexpected "pg3"`},
		{in: `"pg2`, wantErr: "unterminated quoted name"},
		{in: `""`, wantErr: "empty quoted name"},
		{in: "(pg2)", wantErr: `want a standby name, got "("`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := parseSyncStandbyNames(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parse(%q) = %+v, %v; want an error with %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse(%q): %v", tc.in, err)
			}
			if got.Method != tc.want.Method || got.Num != tc.want.Num || !slices.Equal(got.Names, tc.want.Names) {
				t.Errorf("parse(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestSyncConfigMatches(t *testing.T) {
	t.Parallel()
	cfg := syncConfig{Method: syncAny, Num: 1, Names: []string{"PG2", "Node A"}}
	for app, want := range map[string]bool{"pg2": true, "node a": true, "pg3": false, "": false} {
		if got := cfg.matches(app); got != want {
			t.Errorf("matches(%q) = %v, want %v", app, got, want)
		}
	}
	if !(syncConfig{Method: syncFirst, Num: 1, Names: []string{"*"}}).matches("anything") {
		t.Error("* does not match any standby")
	}
	if got, want := cfg.String(), "ANY 1 (PG2, Node A)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestWalReceiverApplicationName(t *testing.T) {
	t.Parallel()
	const base = "user=postgres password=******** dbname=replication host=127.0.0.1 port=5432 sslmode=disable"
	if got := conninfopkg.ApplicationName(base + " application_name=pg2 fallback_application_name=walreceiver"); got != "pg2" {
		t.Errorf("application_name = %q, want pg2", got)
	}
	if got := conninfopkg.ApplicationName(base + " fallback_application_name=walreceiver"); got != "walreceiver" {
		t.Errorf("without application_name = %q, want the fallback", got)
	}
}

// TestSyncStandbys sets synchronous_standby_names on the primary of a
// sandbox of its own (pg1, standbys pg2 and pg3 streaming) and asks whether
// pg2 could take over without leaving commits waiting.
func TestSyncStandbys(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	tg := sandboxTarget(sb)
	c := mustBuild(t, "pg.sync_standbys", map[string]any{"primary": "pg1", "candidate": "pg2"})
	tests := []struct {
		setting string
		status  Status
		want    []string
	}{
		{"", Pass, []string{"synchronous_standby_names is empty on pg1: synchronous replication is off"}},
		{"FIRST 1 (pg2)", Fail, []string{"pg2 (streaming", "pg3 (streaming", "without the candidate pg2, 0 listed standby(s) stream: none; 1 needed",
			"commits on the new primary would wait for a synchronous standby that is not there", "the old primary pg1 rejoins only later"}},
		{"ANY 1 (pg2, pg3)", Pass, []string{"without the candidate pg2, 1 listed standby(s) stream: pg3; 1 needed"}},
		{"ANY 2 (pg2, pg3)", Fail, []string{"1 listed standby(s) stream: pg3; 2 needed", "would wait"}},
		{"2 (pg2, pg3)", Fail, []string{"FIRST 2 (pg2, pg3)", "2 needed"}},
		{"*", Pass, []string{"FIRST 1 (*)", "stream: pg3; 1 needed"}},
		{`"PG3"`, Pass, []string{"stream: pg3; 1 needed"}},
		{"pg2, pg4", Fail, []string{"stream: none; 1 needed"}},
	}
	for _, tc := range tests {
		t.Run(tc.setting, func(t *testing.T) {
			alterSystem(t, sb, "pg1", "synchronous_standby_names", tc.setting, tc.setting)
			r := runCheck(t, c, tg)
			assertResult(t, r, tc.status, tc.want, nil)
			if tc.setting != "" {
				if apps, _ := r.Values["candidate_application_names"].([]string); !slices.Contains(apps, "pg2") {
					t.Errorf("values candidate_application_names = %v, want pg2 among them", r.Values["candidate_application_names"])
				}
			}
		})
	}
	// The candidate, not the node name, decides: the same setting with pg3
	// as candidate leaves pg2.
	other := mustBuild(t, "pg.sync_standbys", map[string]any{"primary": "pg1", "candidate": "pg3"})
	alterSystem(t, sb, "pg1", "synchronous_standby_names", "FIRST 1 (pg2)", "FIRST 1 (pg2)")
	assertResult(t, runCheck(t, other, tg), Pass, []string{"without the candidate pg3, 1 listed standby(s) stream: pg2"}, nil)
	// A standby is no primary to ask.
	wrong := mustBuild(t, "pg.sync_standbys", map[string]any{"primary": "pg2", "candidate": "pg3"})
	assertResult(t, runCheck(t, wrong, tg), Error, []string{"pg2 is in recovery, not a primary"}, nil)
}

func TestSyncStandbysNew(t *testing.T) {
	t.Parallel()
	if _, err := build(t, "pg.sync_standbys", map[string]any{"primary": "pg1", "candidate": "pg1"}); err == nil {
		t.Error("the same node as primary and candidate was accepted")
	}
	c := mustBuild(t, "pg.sync_standbys", map[string]any{"primary": "pg1", "candidate": "pg2"})
	if got := c.Describe(nil); !strings.Contains(got, "once pg2 takes over from pg1") {
		t.Errorf("describe = %q", got)
	}
}
