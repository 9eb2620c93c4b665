// Command switchover moves the primary role of a PostgreSQL cluster to a
// standby on purpose, by running a declarative runbook step by step.
package main

import "os"

func main() {
	// The guard is this program run again: only the program itself, not a
	// test that calls execute, can start one.
	canGuard = true
	os.Exit(execute(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
