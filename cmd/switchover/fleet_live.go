package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/switchover/switchover/internal/fleet"
)

// fleetLive is the block of running clusters a fleet run keeps under its
// lines at a terminal — cluster, step, elapsed — erased and drawn again
// around every line and once a second, so that the operator sees where
// each running cluster is without `fleet status`. Without a terminal
// there is none: the lines alone, unchanged.
type fleetLive struct {
	w     io.Writer
	width int
	now   func() time.Time
	order []string // running clusters, in the order they started
	rows  map[string]*liveRow
	drawn int // lines of the block on the screen
}

type liveRow struct {
	step  string
	since time.Time
}

func newFleetLive(w io.Writer, width int) *fleetLive {
	return &fleetLive{w: w, width: max(width, 40), now: time.Now, rows: map[string]*liveRow{}}
}

// observe follows a record: a cluster taken on joins the block, its step
// moves on, its end or skip takes it out.
func (l *fleetLive) observe(r fleet.Record) {
	switch r.Event {
	case fleet.EventClusterStarting, fleet.EventClusterWaiting:
		if _, ok := l.rows[r.Cluster]; !ok {
			l.order = append(l.order, r.Cluster)
			l.rows[r.Cluster] = &liveRow{since: r.Time}
		}
	case "cluster.step":
		if row, ok := l.rows[r.Cluster]; ok {
			row.step = r.Step
		}
	case fleet.EventClusterFinished, fleet.EventClusterSkipped:
		if _, ok := l.rows[r.Cluster]; ok {
			delete(l.rows, r.Cluster)
			l.order = slices.DeleteFunc(l.order, func(n string) bool { return n == r.Cluster })
		}
	}
}

// erase takes the block off the screen: up as many lines as it has,
// and clear to the end.
func (l *fleetLive) erase() {
	if l.drawn > 0 {
		fmt.Fprintf(l.w, "\x1b[%dA\x1b[J", l.drawn)
		l.drawn = 0
	}
}

// draw writes the block under the lines: nothing when no cluster runs.
// Every line is cut to the terminal's width, so that none wraps and the
// count of lines to erase holds.
func (l *fleetLive) draw() {
	if len(l.order) == 0 {
		return
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  running %d:\tSTEP\tELAPSED\n", len(l.order))
	for _, name := range l.order {
		row := l.rows[name]
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", name, orDash(row.step), fmtDuration(l.now().Sub(row.since)))
	}
	tw.Flush()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	var out strings.Builder
	for _, line := range lines {
		out.WriteString(cutEnd(line, l.width-1) + "\n")
	}
	_, _ = io.WriteString(l.w, out.String())
	l.drawn = len(lines)
}

// startLive keeps, when out is a terminal (not TERM=dumb) and the view is
// for a person,
// the block of running clusters under the lines, redrawn once a second,
// until the returned stop is called, which takes the block off the
// screen. Otherwise stop does nothing.
func (v *fleetView) startLive(out io.Writer) (stop func()) {
	if v.json != nil || !isTerminal(out) || os.Getenv("TERM") == "dumb" {
		return func() {}
	}
	v.mu.Lock()
	v.live = newFleetLive(v.w, terminalWidth(out))
	v.mu.Unlock()
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
				v.mu.Lock()
				v.live.erase()
				v.live.draw()
				v.mu.Unlock()
			}
		}
	}()
	return func() {
		close(quit)
		<-done
		v.mu.Lock()
		v.live.erase()
		v.live = nil // the lines alone from here: the final status follows
		v.mu.Unlock()
	}
}
