package checks

import (
	"strings"
	"testing"

	"github.com/switchover/switchover/internal/pg"
)

func TestArchivingKeptJudge(t *testing.T) {
	off := pg.Archiving{Mode: "off"}
	on := pg.Archiving{Mode: "on", Command: true}
	lib := pg.Archiving{Mode: "always", Library: "basic_archive"}
	noCommand := pg.Archiving{Mode: "on"}
	tests := []struct {
		name               string
		primary, candidate pg.Archiving
		want               Status
		see                []string
	}{
		{"nothing archived", off, off, Pass, []string{"pg1 does not archive its WAL (archive_mode=off", "no archiving to keep"}},
		{"a primary with archive_mode on but no command archives nothing", noCommand, off, Pass, []string{"no archiving to keep"}},
		{"both archive", on, on, Pass, []string{"pg2 will once promoted (archive_mode=on, archive_command set)"}},
		{"a library counts", on, lib, Pass, []string{"archive_library=basic_archive"}},
		{"the candidate's archive_mode is off", on, off, Fail, []string{"pg2 would archive nothing once promoted (archive_mode=off", "then restart pg2 (archive_mode needs a restart)"}},
		{"the candidate has no command", on, noCommand, Fail, []string{"no archive_command or archive_library", "and reload"}},
	}
	c := &ArchivingKept{Primary: "pg1", Candidate: "pg2"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.judge(tt.primary, tt.candidate)
			if r.Status != tt.want {
				t.Fatalf("status %s, want %s: %s", r.Status, tt.want, r.Observed)
			}
			for _, s := range tt.see {
				if !strings.Contains(r.Observed, s) {
					t.Errorf("observed %q lacks %q", r.Observed, s)
				}
			}
		})
	}
}
