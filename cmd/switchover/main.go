// Command switchover moves the primary role of a PostgreSQL cluster to a
// standby on purpose, by running a declarative runbook step by step.
package main

import (
	"os"

	"github.com/switchover/switchover/runbook"
)

func main() {
	// A run's guard is this program started again (runbook.ServeGuards);
	// only the program itself, not a test that calls execute, serves one.
	if served, code := runbook.ServeGuards(os.Args[1:], os.Stdin, os.Stderr); served {
		os.Exit(code)
	}
	os.Exit(execute(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
