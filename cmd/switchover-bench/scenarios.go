package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"
)

// The modes: where the canary writes through.
const (
	modePooler = "pooler"     // through PgBouncer, which the playbook pauses and repoints
	modeDirect = "direct"     // the inventory has no pooler: a multi-host read-write connection string
	modeEight  = "8 standbys" // the pooler mode on a sandbox with 8 standbys instead of 2
)

// switchover is one measured switchover.
type switchover struct {
	mode, from, to string
	run            int
	endpoint       string
	windowMS       float64
	errors         int
	lost           int
	acked          int
	timing
	slowEvents []string // the slowest step's events, when it took over a second
}

// preflight runs the playbook's first step alone, b.o.Runs times, through
// the engine, and returns how long its preconditions took each time.
func (b *bench) preflight(ctx context.Context) ([]float64, error) {
	standbys := len(b.sb.Nodes) - 1
	var out []float64
	for i := 1; i <= b.o.Runs; i++ {
		p, err := planOf(b.rb, b.sb.Inventory(), "primary="+b.sb.Nodes[0].Name)
		if err != nil {
			return nil, err
		}
		if len(p.Steps) == 0 || p.Steps[0].Name != "preflight" {
			return nil, fmt.Errorf("%s: the first step is not preflight", Playbook)
		}
		p.Steps, p.Finally = p.Steps[:1], nil
		evs, err := b.execute(ctx, p, preflightTimeout)
		if err != nil {
			return nil, fmt.Errorf("preflight alone, %d standbys, run %d: %w", standbys, i, err)
		}
		t := analyse(evs)
		d, ok := t.steps["preflight"]
		if !ok {
			return nil, fmt.Errorf("preflight alone, %d standbys, run %d: the step never reached done", standbys, i)
		}
		out = append(out, d)
	}
	fmt.Fprintf(b.out, "   preflight alone, %d standbys: median %s ms (min %s, max %s) over %s\n",
		standbys, ms(median(out)), ms(minOf(out)), ms(maxOf(out)), plural(len(out), "run"))
	return out, nil
}

// switchover runs a playbook once through the engine, from -> to, as
// `switchover run PLAYBOOK -i INVENTORY --var primary=FROM --var
// candidate=TO --yes` does, and measures it by its events and its
// canary's facts.
func (b *bench) switchover(ctx context.Context, rb *spec.Runbook, mode, inventory string, i int, from, to string, vars ...string) (*switchover, error) {
	what := fmt.Sprintf("%s switchover %s -> %s (round trip %d)", mode, from, to, i)
	p, err := planOf(rb, inventory, append([]string{"primary=" + from, "candidate=" + to}, vars...)...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	evs, err := b.execute(ctx, p, switchoverTimeout)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	s, err := measure(evs, mode, i, from, to)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return s, nil
}

// measure reads one switchover's figures from its run's events: the
// timing from the step events, the window, client errors, lost and
// acknowledged commits from the canary's facts. Every mode but direct
// writes through the pooler.
func measure(evs []journal.Event, mode string, i int, from, to string) (*switchover, error) {
	s := &switchover{mode: mode, from: from, to: to, run: i, timing: analyse(evs)}
	if name, d := s.slowest(); d > 1000 {
		s.slowEvents = eventsOf(evs, name)
	}
	facts := map[string]string{}
	for _, ev := range evs {
		if ev.Fact != nil {
			facts[ev.Fact.Key] = ev.Fact.Value
		}
	}
	s.endpoint = facts[journal.FactCanaryEndpoint]
	if isHAProxyMode(mode) {
		if !strings.Contains(s.endpoint, "router") {
			return nil, fmt.Errorf("the canary wrote through %q, not the router", s.endpoint)
		}
	} else if strings.Contains(s.endpoint, "pooler") != (mode != modeDirect) {
		return nil, fmt.Errorf("the canary wrote through %q", s.endpoint)
	}
	var perr error
	num := func(key string) float64 {
		v, ok := facts[key]
		if !ok {
			perr = errors.Join(perr, fmt.Errorf("the canary recorded no %s", key))
			return 0
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			perr = errors.Join(perr, fmt.Errorf("fact %s=%q: %w", key, v, err))
		}
		return f
	}
	s.windowMS = num(journal.FactCanaryWindowMS)
	s.errors = int(num(journal.FactCanaryErrors))
	s.lost = int(num(journal.FactCanaryLost))
	s.acked = int(num(journal.FactCanaryAcked))
	if perr != nil {
		return nil, perr
	}
	if s.totalMS == 0 {
		return nil, errors.New("no run.started and run.finished events to time it by")
	}
	return s, nil
}
