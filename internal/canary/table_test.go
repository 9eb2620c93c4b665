package canary_test

import (
	"strings"
	"testing"

	"github.com/switchover/switchover/internal/canary"
)

// TestTableFor: every run id gives a plain table name of its own, within
// PostgreSQL's 63 bytes.
func TestTableFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, prefix, runID, want string
	}{
		{"a run id", canary.DefaultTable, "20261121T102530Z-3f2a9c", "switchover_canary_20261121t102530z_3f2a9c"},
		{"a test's id", "canary", "20261121T102530.123456789", "canary_20261121t102530_123456789"},
		{"no run id", canary.DefaultTable, "", canary.DefaultTable},
		{"too long", canary.DefaultTable, strings.Repeat("a", 80), (canary.DefaultTable + "_" + strings.Repeat("a", 80))[:63]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := canary.TableFor(tt.prefix, tt.runID); got != tt.want {
				t.Errorf("TableFor(%q, %q) = %q, want %q", tt.prefix, tt.runID, got, tt.want)
			}
		})
	}
	if a, b := canary.TableFor(canary.DefaultTable, "20261121T102530Z-3f2a9c"), canary.TableFor(canary.DefaultTable, "20261121T102530Z-3f2a9d"); a == b {
		t.Errorf("two runs started in the same second share table %s", a)
	}
}
