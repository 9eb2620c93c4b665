package main

import (
	"errors"
	"testing"
	"time"

	"github.com/switchover/switchover/runbook"
)

func TestMaintenanceWindow(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 2, 15, 0, 0, time.UTC)
	tests := []struct {
		name          string
		before, after string
		want          int
	}{
		{"no window", "", "", exitOK},
		{"inside", "2026-11-22T02:00:00Z", "2026-11-22T02:30:00Z", exitOK},
		{"too early", "2026-11-22T02:30:00Z", "", exitDeclined},
		{"too late", "", "2026-11-22T02:10:00Z", exitDeclined},
		{"at the opening", "2026-11-22T02:15:00Z", "", exitOK},
		{"a bad time", "tonight", "", exitUsage},
		{"an empty window", "2026-11-22T03:00:00Z", "2026-11-22T02:00:00Z", exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := checkWindow(&runOpts{notBefore: tt.before, notAfter: tt.after}, now)
			if got := exitCode(err); got != tt.want {
				t.Fatalf("checkWindow = %v (exit %d), want exit %d", err, got, tt.want)
			}
			if tt.want == exitDeclined && !errors.Is(err, runbook.ErrDeclined) {
				t.Fatalf("%v does not wrap ErrDeclined", err)
			}
		})
	}
}
