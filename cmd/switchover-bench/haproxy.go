package main

// The HAProxy comparison: on a Patroni sandbox with HAProxy in front
// instead of PgBouncer (sandbox up --manager patroni --router haproxy: a
// backend with every member, health checks GET /primary on each member's
// REST API, inter 3s fall 3 rise 2, as Patroni's own template has them),
// Runs round trips pg1 -> pg2 -> pg1 of the patroni-switchover playbook
// driving HAProxy (the old leader's server drained before the switchover,
// the new leader's routed to right after it), and Runs more of the same
// playbook with router_steps=false, HAProxy left to its health checks
// alone. The canary writes through HAProxy both ways; the difference is
// what the runbook buys an HAProxy user.

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"time"

	"github.com/switchover/switchover/internal/sandbox"
)

// The HAProxy modes.
const (
	modeHAProxy       = "haproxy"        // the playbook drives HAProxy's runtime state
	modeHAProxyChecks = "haproxy checks" // the same playbook with router_steps=false: HAProxy's health checks alone
)

// routedTimeout bounds the wait, before each switchover, until HAProxy
// routes to the leader alone (left to its checks, the old leader stays up
// until it has failed fall checks: 9s).
const routedTimeout = 30 * time.Second

// haproxyResult is the HAProxy part of the last line.
type haproxyResult struct {
	Driven     haproxyMode `json:"haproxy"`
	ChecksOnly haproxyMode `json:"haproxy_checks_only"`
	rows       []*switchover
}

// haproxyMode is one way's figures: the canary's, and how long from the
// switchover request until a new connection through HAProxy writes on
// the new leader.
type haproxyMode struct {
	modeResult
	ToWrites med `json:"to_writes_ms"`
}

// isHAProxyMode reports whether the canary of mode writes through HAProxy.
func isHAProxyMode(mode string) bool { return mode == modeHAProxy || mode == modeHAProxyChecks }

// haproxy runs the comparison, or says why it is skipped and returns nil.
func (b *bench) haproxy(ctx context.Context) (*haproxyResult, error) {
	if _, _, err := sandbox.FindPatroni(); err != nil {
		fmt.Fprintf(b.out, "\n== haproxy: skipped (its health checks ask Patroni): %v\n", err)
		return nil, nil
	}
	if _, err := exec.LookPath("haproxy"); err != nil {
		fmt.Fprintf(b.out, "\n== haproxy: skipped: haproxy not found on the PATH\n")
		return nil, nil
	}
	rb, err := loadPlaybook(patroniPlaybook)
	if err != nil {
		return nil, err
	}
	b.router = sandbox.RouterHAProxy
	defer func() { b.router = "" }()
	if err := b.up(ctx, 2, sandbox.ManagerPatroni); err != nil {
		return nil, err
	}
	fmt.Fprintf(b.out, "   %s per way: %q driving HAProxy, and the same with --var router_steps=false (HAProxy's checks alone: GET /primary, inter 3s fall 3 rise 2)\n",
		plural(b.o.Runs, "round trip"), patroniPlaybook)
	fmt.Fprintln(b.out)
	haproxyHeader(b.out)
	res := &haproxyResult{}
	dirs := [][2]string{{"pg1", "pg2"}, {"pg2", "pg1"}}
	for _, m := range []struct{ mode, steps string }{{modeHAProxy, "true"}, {modeHAProxyChecks, "false"}} {
		for i := 1; i <= b.o.Runs; i++ {
			for _, d := range dirs {
				if err := b.waitSettled(ctx, d[0]); err != nil {
					return nil, err
				}
				if err := b.sb.WaitRouted(ctx, d[0], routedTimeout); err != nil {
					return nil, fmt.Errorf("%s switchover %s -> %s (round trip %d): before it: %w", m.mode, d[0], d[1], i, err)
				}
				s, err := b.switchover(ctx, rb, m.mode, b.sb.Inventory(), i, d[0], d[1], "router_steps="+m.steps)
				if err != nil {
					return nil, err
				}
				printHAProxy(b.out, s)
				res.rows = append(res.rows, s)
			}
		}
	}
	if err := b.waitSettled(ctx, "pg1"); err != nil {
		return nil, err
	}
	if b.o.Keep {
		fmt.Fprintf(b.out, "-keep: the HAProxy sandbox %s is brought down all the same, for the next sandbox\n", b.sb.Dir)
	}
	if err := b.down(); err != nil {
		return nil, err
	}
	res.Driven = res.mode(modeHAProxy)
	res.ChecksOnly = res.mode(modeHAProxyChecks)
	return res, nil
}

// toRouteMS is the time from the switchover request until a new
// connection through HAProxy writes on the new leader: the switchover
// step and route-router, up to its haproxy.routes_to holding.
func (s *switchover) toRouteMS() float64 { return s.steps["switchover"] + s.steps["route-router"] }

func (r *haproxyResult) mode(m string) haproxyMode {
	var to []float64
	for _, s := range r.rows {
		if s.mode == m {
			to = append(to, s.toRouteMS())
		}
	}
	return haproxyMode{modeResult: statsOf(r.rows, m).result(), ToWrites: med{ms(median(to))}}
}

func haproxyHeader(w io.Writer) {
	fmt.Fprintf(w, "%-14s  %3s  %-9s  %10s  %6s  %4s  %6s  %13s  %12s  %s\n",
		"mode", "run", "direction", "window_ms", "errors", "lost", "acked", "switchover_ms", "to_writes_ms", "slowest step")
}

func printHAProxy(w io.Writer, s *switchover) {
	name, d := s.slowest()
	fmt.Fprintf(w, "%-14s  %3d  %-9s  %10s  %6d  %4d  %6d  %13s  %12s  %s %s\n",
		s.mode, s.run, s.from+"->"+s.to, ms(s.windowMS), s.errors, s.lost, s.acked, ms(s.totalMS), ms(s.toRouteMS()), name, ms(d))
}

// summary prints the two ways side by side.
func (r *haproxyResult) summary(w io.Writer, runs int) {
	fmt.Fprintf(w, "== haproxy: %d switchovers per way (%s pg1 -> pg2 -> pg1), Patroni, canary through HAProxy\n", 2*runs, plural(runs, "round trip"))
	rows := [][]string{{"way", "window_ms min", "median", "max", "client errors", "lost", "to_writes_ms median"}}
	for _, m := range []struct {
		name string
		r    haproxyMode
	}{{modeHAProxy, r.Driven}, {modeHAProxyChecks, r.ChecksOnly}} {
		rows = append(rows, []string{m.name, m.r.Window.Min.String(), m.r.Window.Median.String(), m.r.Window.Max.String(),
			fmt.Sprint(m.r.ClientErrors), fmt.Sprint(m.r.Lost), m.r.ToWrites.Median.String()})
	}
	table(w, rows, 1)
	fmt.Fprintln(w, "   haproxy: the playbook drains the old leader's server before the switchover and routes to the new")
	fmt.Fprintln(w, "   leader's right after it; haproxy checks: the same run with router_steps=false, HAProxy moved by its")
	fmt.Fprintln(w, "   health checks alone (the new leader up after rise checks, the old one down after fall checks).")
	fmt.Fprintln(w, "   to_writes_ms: from the switchover request until a new connection through HAProxy writes on the new leader")
}

// addTo puts the HAProxy rows' figures in the last line.
func (r *haproxyResult) addTo(res *result) {
	res.HAProxy, res.HAProxyChecksOnly = &r.Driven, &r.ChecksOnly
}
