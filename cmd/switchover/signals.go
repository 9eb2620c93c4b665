package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"
)

func termIsTerminal(fd int) bool { return term.IsTerminal(fd) }

// terminalWidth is the width of the terminal behind f, or 80.
func terminalWidth(f any) int {
	type fder interface{ Fd() uintptr }
	if x, ok := f.(fder); ok {
		if w, _, err := term.GetSize(int(x.Fd())); err == nil && w > 0 {
			return w
		}
	}
	return 80
}

type interruptKey struct{}

// newSignalContext handles SIGINT, SIGTERM and SIGHUP: the first asks the
// run to stop at the next safe point (a running action finishes, no new
// step starts, the run can be resumed; while the pooler holds clients, the
// window ends at once: before the point of no return the run rolls back,
// after it the run finishes forward, and the clients go on); the second
// cancels the context, cutting off what runs now (the run's guard resumes
// held clients; resume settles the step that was cut off).
func newSignalContext(parent context.Context, io *streams) (context.Context, func()) {
	ctx, cancel := context.WithCancel(parent)
	first := make(chan struct{})
	sigs := make(chan os.Signal, 2)
	// A hang-up (the operator's ssh session dropped) is an interrupt like
	// the others: it must not kill the run while the pooler holds clients.
	// Writing to a terminal or pipe that went away must not kill it either.
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	signal.Ignore(syscall.SIGPIPE)
	go func() {
		n := 0
		for {
			select {
			case <-sigs:
				n++
				if n == 1 {
					close(first)
					fmt.Fprintln(io.err, "\ninterrupt: stopping at the next safe point (a running action finishes); interrupt again to stop at once")
					continue
				}
				fmt.Fprintln(io.err, "\ninterrupt: stopping at once; `switchover resume` settles the step that was cut off")
				cancel()
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	// A new variable: the goroutine above reads ctx.
	withInterrupt := context.WithValue(ctx, interruptKey{}, (<-chan struct{})(first))
	return withInterrupt, func() { signal.Stop(sigs); cancel() }
}

// interruptOf returns the channel closed at the first interrupt.
func interruptOf(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(interruptKey{}).(<-chan struct{})
	return ch
}
