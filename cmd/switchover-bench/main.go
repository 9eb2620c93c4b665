// Command switchover-bench is what `make bench` runs: the project's
// benchmark of the switchover on sandbox clusters, its report on stdout,
// the JSON line last. A tool of the project, not part of the product.
//
//	make bench RUNS=5
//	go run ./cmd/switchover-bench -runs 5
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/switchover/switchover/runbook"
)

func main() {
	// The benchmark's runs are the user's runs: their guard is this
	// program started again, as `switchover run`'s is switchover.
	if served, code := runbook.ServeGuards(os.Args[1:], os.Stdin, os.Stderr); served {
		os.Exit(code)
	}
	o := Options{Out: os.Stdout, Log: os.Stderr}
	flag.IntVar(&o.Runs, "runs", 5, "round trips pg1 -> pg2 -> pg1 per mode, and preflight runs per sandbox")
	flag.IntVar(&o.PortBase, "port-base", 0, "PgBouncer's port, node i on port-base+i (default: a free block below 32000)")
	flag.BoolVar(&o.Keep, "keep", false, "leave the sandbox in use, its journals and inventories up and on disk when the benchmark ends or stops")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: switchover-bench [-runs N] [-port-base PORT] [-keep]\n\n"+
			"Measures the write-unavailability window, client errors, lost commits, switchover and\n"+
			"precondition times of the %s playbook on sandbox clusters.\n\n", Playbook)
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 || o.Runs < 1 || o.PortBase < 0 || o.PortBase > 65000 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signalContext()
	err := Run(ctx, o)
	interrupted := ctx.Err() != nil
	stop()
	switch {
	case err == nil:
	case interrupted:
		fmt.Fprintf(os.Stderr, "switchover-bench: interrupted: %v\n", err)
		os.Exit(130)
	default:
		fmt.Fprintf(os.Stderr, "switchover-bench: %v\n", err)
		os.Exit(1)
	}
}

// signalContext is cancelled by the first SIGINT or SIGTERM. Later ones are
// only acknowledged: the sandbox is brought down first, within a bound.
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		n := 0
		for {
			select {
			case <-sigs:
				n++
				if n == 1 {
					fmt.Fprintln(os.Stderr, "\ninterrupt: stopping; the sandbox is brought down first")
					cancel()
					continue
				}
				fmt.Fprintf(os.Stderr, "\ninterrupt: still bringing the sandbox down (at most %s)\n", DownTimeout)
			case <-done:
				return
			}
		}
	}()
	return ctx, func() { signal.Stop(sigs); close(done); cancel() }
}
