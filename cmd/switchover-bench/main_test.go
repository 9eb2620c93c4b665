package main

import (
	"os"
	"testing"

	"github.com/switchover/switchover/runbook"
)

// TestMain lets the benchmark's runs start this test binary again as
// their guard, as `make bench` starts its own program.
func TestMain(m *testing.M) {
	if served, code := runbook.ServeGuards(os.Args[1:], os.Stdin, os.Stderr); served {
		os.Exit(code)
	}
	os.Exit(m.Run())
}
