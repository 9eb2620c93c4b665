// Package integration tells the tests that start real servers
// (PostgreSQL, PgBouncer, sshd, Patroni and etcd, HAProxy, repmgr,
// pg_auto_failover) from those that need none. A plain `go test ./...`
// runs only the second kind, fast and with -race; `make test` sets Env
// and runs both.
package integration

import (
	"os"
	"testing"
)

// Env is the variable that asks for the tests with real servers.
const Env = "SWITCHOVER_INTEGRATION"

// Enabled reports whether the tests with real servers are to run.
func Enabled() bool { return os.Getenv(Env) != "" }

// Need skips t unless the tests with real servers are to run.
func Need(t testing.TB) {
	t.Helper()
	if !Enabled() {
		t.Skipf("starts real servers: run with %s=1 (make test does)", Env)
	}
}
