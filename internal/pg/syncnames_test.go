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
