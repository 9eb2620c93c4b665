package pg

import (
	"slices"
	"strings"
	"testing"
)

func TestParseSyncStandbyNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    SyncConfig
		wantErr string
	}{
		{in: "", want: SyncConfig{Method: SyncOff}},
		{in: "   ", want: SyncConfig{Method: SyncOff}},
		{in: "pg2", want: SyncConfig{Method: SyncFirst, Num: 1, Names: []string{"pg2"}}},
		{in: "pg2, pg3", want: SyncConfig{Method: SyncFirst, Num: 1, Names: []string{"pg2", "pg3"}}},
		{in: "*", want: SyncConfig{Method: SyncFirst, Num: 1, Names: []string{"*"}}},
		{in: "FIRST 1 (pg2)", want: SyncConfig{Method: SyncFirst, Num: 1, Names: []string{"pg2"}}},
		{in: "first 2 (pg2,pg3, pg4)", want: SyncConfig{Method: SyncFirst, Num: 2, Names: []string{"pg2", "pg3", "pg4"}}},
		{in: "ANY 1 (pg2, pg3)", want: SyncConfig{Method: SyncAny, Num: 1, Names: []string{"pg2", "pg3"}}},
		{in: "Any 2(*)", want: SyncConfig{Method: SyncAny, Num: 2, Names: []string{"*"}}},
		{in: "2 (pg2, pg3)", want: SyncConfig{Method: SyncFirst, Num: 2, Names: []string{"pg2", "pg3"}}},
		{in: `ANY 1 ("Node A", "say ""hi""", pg3)`, want: SyncConfig{Method: SyncAny, Num: 1, Names: []string{"Node A", `say "hi"`, "pg3"}}},
		{in: `"first", "any"`, want: SyncConfig{Method: SyncFirst, Num: 1, Names: []string{"first", "any"}}},
		{in: `FIRST 1 ("*")`, want: SyncConfig{Method: SyncFirst, Num: 1, Names: []string{"*"}}},
		{in: "1, 2", want: SyncConfig{Method: SyncFirst, Num: 1, Names: []string{"1", "2"}}},
		{in: "ANY 1 (1, 2)", want: SyncConfig{Method: SyncAny, Num: 1, Names: []string{"1", "2"}}},
		{in: "\tFIRST\n3 ( a ,b,c )  ", want: SyncConfig{Method: SyncFirst, Num: 3, Names: []string{"a", "b", "c"}}},
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
			got, err := ParseSyncStandbyNames(tc.in)
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
	cfg := SyncConfig{Method: SyncAny, Num: 1, Names: []string{"PG2", "Node A"}}
	for app, want := range map[string]bool{"pg2": true, "node a": true, "pg3": false, "": false} {
		if got := cfg.Matches(app); got != want {
			t.Errorf("matches(%q) = %v, want %v", app, got, want)
		}
	}
	if !(SyncConfig{Method: SyncFirst, Num: 1, Names: []string{"*"}}).Matches("anything") {
		t.Error("* does not match any standby")
	}
	if got, want := cfg.String(), `ANY 1 (PG2, "Node A")`; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestSyncConfigAfterSwitch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		before     string
		candidate  []string
		oldPrimary string
		want       string
		reach      int // of standbys pg1, pg3
	}{
		{"off stays off", "", []string{"pg2"}, "pg1", "", 0},
		{"first, the candidate replaced", "FIRST 1 (pg2)", []string{"pg2"}, "pg1", "FIRST 1 (pg1)", 1},
		{"any, the candidate replaced", "ANY 1 (pg2, pg3)", []string{"pg2"}, "pg1", "ANY 1 (pg1, pg3)", 2},
		{"priority kept: the old primary takes the candidate's rank", "FIRST 1 (pg3, pg2, pg4)", []string{"pg2"}, "pg1", "FIRST 1 (pg3, pg1, pg4)", 1},
		{"plain list", "pg2, pg3", []string{"pg2"}, "pg1", "FIRST 1 (pg1, pg3)", 1},
		{"the candidate under its receiver's name", "FIRST 1 (walreceiver)", []string{"pg2", "walreceiver"}, "pg1", "FIRST 1 (pg1)", 1},
		{"case does not matter", "FIRST 1 (PG2)", []string{"pg2"}, "pg1", "FIRST 1 (pg1)", 1},
		{"the old primary listed already: not twice", "FIRST 2 (pg1, pg2, pg3)", []string{"pg2"}, "pg1", "FIRST 2 (pg1, pg3)", 2},
		{"the candidate not listed: unchanged", "ANY 1 (pg3)", []string{"pg2"}, "pg1", "ANY 1 (pg3)", 1},
		{"star stays", "ANY 2 (*)", []string{"pg2"}, "pg1", "ANY 2 (*)", 2},
		{"a name that needs quotes", `FIRST 1 ("node two")`, []string{"node two"}, "Old One", `FIRST 1 ("Old One")`, 0},
		{"an external standby stays and cannot count", "ANY 2 (pg2, dr1)", []string{"pg2"}, "pg1", "ANY 2 (pg1, dr1)", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			before, err := ParseSyncStandbyNames(tc.before)
			if err != nil {
				t.Fatal(err)
			}
			after := before.AfterSwitch(tc.candidate, tc.oldPrimary)
			if got := after.String(); got != tc.want {
				t.Errorf("AfterSwitch(%q) = %q, want %q", tc.before, got, tc.want)
			}
			back, err := ParseSyncStandbyNames(after.String())
			if err != nil || !back.Equal(after) {
				t.Errorf("%q does not read back as itself: %+v, %v", after.String(), back, err)
			}
			if got := after.Reach([]string{"pg1", "pg3"}); got != tc.reach {
				t.Errorf("Reach(pg1, pg3) = %d, want %d", got, tc.reach)
			}
		})
	}
}

func TestSyncConfigEqual(t *testing.T) {
	t.Parallel()
	parse := func(s string) SyncConfig {
		c, err := ParseSyncStandbyNames(s)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"", "  ", true},
		{"pg1", "FIRST 1 (pg1)", true},
		{"FIRST 1 (PG1)", `first 1 ("pg1")`, true},
		{"FIRST 1 (pg1)", "ANY 1 (pg1)", false},
		{"FIRST 1 (pg1, pg3)", "FIRST 1 (pg3, pg1)", false},
		{"ANY 1 (pg1)", "ANY 2 (pg1)", false},
		{"", "pg1", false},
	} {
		if got := parse(tc.a).Equal(parse(tc.b)); got != tc.want {
			t.Errorf("Equal(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
