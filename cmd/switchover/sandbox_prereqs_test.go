package main

import (
	"strings"
	"testing"
)

// A missing PostgreSQL (a --pg-bin that holds no server) is named, with the
// Debian package and the one command that installs it; exit 2, nothing done.
func TestSandboxPrereqsNamesWhatIsMissing(t *testing.T) {
	t.Parallel()
	code, out, stderr := executeT(t, "sandbox", "prereqs", "--pg-bin", t.TempDir())
	if code != exitUsage {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitUsage, out, stderr)
	}
	if !strings.Contains(out, "missing (Debian package postgresql)") {
		t.Errorf("stdout does not name the missing server:\n%s", out)
	}
	if !strings.Contains(stderr, "apt-get install -y --no-install-recommends postgresql") {
		t.Errorf("stderr does not give the install command:\n%s", stderr)
	}
}
