package pg_test

import (
	"testing"

	"github.com/switchover/switchover/internal/pg"
)

func TestParseControlData(t *testing.T) {
	t.Parallel()
	out := `pg_control version number:            1300
Catalog version number:               202209061
Database system identifier:           7301234567890123456
Database cluster state:               shut down
pg_control last modified:             Mon 03 Jun 2024 10:00:00 AM UTC
Latest checkpoint location:           0/3000148
Latest checkpoint's REDO location:    0/3000148
Latest checkpoint's NextXID:          0:735

not a field
`
	got := pg.ParseControlData(out)
	want := map[string]string{
		"Database cluster state":            "shut down",
		"Latest checkpoint location":        "0/3000148",
		"Latest checkpoint's REDO location": "0/3000148",
		"Latest checkpoint's NextXID":       "0:735",
		"pg_control last modified":          "Mon 03 Jun 2024 10:00:00 AM UTC",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%q = %q, want %q", k, got[k], v)
		}
	}
	if _, ok := got["not a field"]; ok {
		t.Error("a line without a colon became a field")
	}
	if len(pg.ParseControlData("")) != 0 {
		t.Error("empty output gave fields")
	}
}
