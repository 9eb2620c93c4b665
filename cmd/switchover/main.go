// Command switchover moves the primary role of a PostgreSQL cluster to a
// standby on purpose, by running a declarative runbook step by step.
package main

import "os"

func main() {
	os.Exit(execute(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
