package pg

import (
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/switchover/switchover/internal/transport"
)

// versionText finds the major version in what PostgreSQL's programs say
// of themselves: "postgres (PostgreSQL) 17.2", "PostgreSQL 15.8 (Debian
// 15.8-1)", "postgres (PostgreSQL) 18beta1".
var versionText = regexp.MustCompile(`PostgreSQL\)? (\d+)`)

// MajorOfVersionText returns the major version that `postgres --version`
// or `pg_config --version` printed, or 0 when it names none.
func MajorOfVersionText(s string) int {
	m := versionText.FindStringSubmatch(s)
	if m == nil {
		return 0
	}
	v, _ := strconv.Atoi(m[1])
	return v
}

// BinVersionCommand is the command that asks the server binary in binDir
// its version; "" finds postgres on the PATH.
func BinVersionCommand(binDir string) string {
	if binDir == "" {
		return "postgres --version"
	}
	return transport.ShellQuote(filepath.Join(binDir, "postgres")) + " --version"
}
