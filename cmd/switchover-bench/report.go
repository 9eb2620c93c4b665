package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/switchover/switchover/runbook/spec"
)

func header(w io.Writer) {
	fmt.Fprintf(w, "%-6s  %3s  %-9s  %10s  %6s  %4s  %6s  %13s  %16s  %s\n",
		"mode", "run", "direction", "window_ms", "errors", "lost", "acked", "switchover_ms", "preconditions_ms", "slowest step")
}

func (s *switchover) print(w io.Writer) {
	name, d := s.slowest()
	fmt.Fprintf(w, "%-6s  %3d  %-9s  %10s  %6d  %4d  %6d  %13s  %16s  %s %s\n",
		s.mode, s.run, s.from+"->"+s.to, ms(s.windowMS), s.errors, s.lost, s.acked, ms(s.totalMS), ms(s.precondMS), name, ms(d))
	for _, l := range s.slowEvents {
		fmt.Fprintln(w, "        "+l)
	}
}

// extraRow is a measured row beside the two modes (two PgBouncers, say):
// it prints its summary and puts its figures in the last line.
type extraRow interface {
	summary(w io.Writer, runs int)
	addTo(r *result)
}

// report prints the summary, the pooler mode's per-step breakdown, the
// preflight figures, and last the JSON line.
func report(w io.Writer, runs int, all []*switchover, pre2, pre8 []float64, pat *patroniResult, load *loadFigures, sshSkip string, extras ...extraRow) error {
	pooler, direct := statsOf(all, modePooler), statsOf(all, modeDirect)
	fmt.Fprintf(w, "== summary: %d switchovers per mode (%s pg1 -> pg2 -> pg1)\n", 2*runs, plural(runs, "round trip"))
	rows := [][]string{{"mode", "window_ms min", "median", "max", "client errors", "lost", "switchover_ms median", "preconditions_ms median"}}
	for _, m := range []struct {
		name string
		s    modeStats
	}{{modePooler, pooler}, {modeDirect, direct}, {modeLoad, statsOf(all, modeLoad)}, {modeEight, statsOf(all, modeEight)},
		{modeSSH, statsOf(all, modeSSH)}, {modeSSHSessions, statsOf(all, modeSSHSessions)}} {
		if len(m.s.window) == 0 && m.name != modePooler && m.name != modeDirect {
			continue
		}
		rows = append(rows, []string{m.name, ms(minOf(m.s.window)).String(), ms(median(m.s.window)).String(), ms(maxOf(m.s.window)).String(),
			strconv.Itoa(m.s.errors), strconv.Itoa(m.s.lost), ms(median(m.s.total)).String(), ms(median(m.s.precond)).String()})
	}
	table(w, rows, 1)
	fmt.Fprintln(w, "   window: the longest time the canary could not commit through the client endpoint;")
	fmt.Fprintln(w, "   pooler: through PgBouncer; direct: a multi-host read-write connection string, no pooler;")
	fmt.Fprintf(w, "   under load: the pooler mode while pgbench keeps %d clients busy through the same PgBouncer;\n", loadClients)
	fmt.Fprintln(w, "   8 standbys: the pooler mode on a sandbox with 8 standbys;")
	fmt.Fprintln(w, "   ssh: through PgBouncer, every node and the pooler on a host of its own, reached over ssh")
	fmt.Fprintln(w, "   (one shell per host; ssh-sessions: the same with a session per command, alternated with it);")
	fmt.Fprintln(w, "   the JSON line's switchover_ms and preconditions_ms are the pooler mode's medians")

	fmt.Fprintf(w, "\n== where the time goes: median per step, pooler mode (%d switchovers)\n", 2*runs)
	breakdown(w, all, modePooler, median(pooler.total))
	fmt.Fprintf(w, "\n== inside the window: median per step from the pause to the resume, pooler mode (%d switchovers)\n", 2*runs)
	window := windowOf(all, modePooler)
	windowTable(w, window)
	sshSummary(w, all, sshSkip)

	fmt.Fprintf(w, "\n== preflight alone (the playbook's first step, %s each)\n", plural(runs, "run"))
	table(w, [][]string{
		{"standbys", "median ms", "min", "max"},
		{"2", ms(median(pre2)).String(), ms(minOf(pre2)).String(), ms(maxOf(pre2)).String()},
		{"8", ms(median(pre8)).String(), ms(minOf(pre8)).String(), ms(maxOf(pre8)).String()},
	}, 0)
	fmt.Fprintln(w)
	if pat != nil {
		pat.summary(w, runs)
		fmt.Fprintln(w)
	}
	goals(w, all)
	if load != nil {
		fmt.Fprintf(w, "   under load: pgbench, %d clients through the pooler: %d transactions committed, %s aborted\n",
			load.Clients, load.Transactions, plural(load.Aborted, "client"))
	}
	fmt.Fprintln(w)
	res := resultOf(runs, all, pre2, pre8, pat)
	if l := statsOf(all, modeLoad); len(l.window) > 0 {
		res.UnderLoad = &loadResult{modeResult: l.result(), Pgbench: load}
	}
	if e := statsOf(all, modeEight); len(e.window) > 0 {
		r := e.result()
		res.EightStandbys = &r
	}
	res.SSH, res.SSHSkipped = sshResultOf(all, sshSkip), sshSkip
	res.SSHSessions = modeResultOf(all, modeSSHSessions, sshSkip)
	res.Window = window
	for _, r := range extras {
		r.summary(w, runs)
		fmt.Fprintln(w)
		r.addTo(&res)
	}
	line, err := json.Marshal(res)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, string(line))
	return nil
}

// stepTimes are the step times of one mode's switchovers by step, the
// steps in run order.
type stepTimes struct {
	order          []string
	section        map[string]spec.Section
	steps, precond map[string][]float64
}

func stepTimesOf(all []*switchover, mode string) stepTimes {
	t := stepTimes{section: map[string]spec.Section{}, steps: map[string][]float64{}, precond: map[string][]float64{}}
	seen := map[string]bool{}
	for _, s := range all {
		if s.mode != mode {
			continue
		}
		for _, name := range s.order {
			if !seen[name] {
				seen[name] = true
				t.order = append(t.order, name)
				t.section[name] = s.section[name]
			}
			if d, ok := s.steps[name]; ok {
				t.steps[name] = append(t.steps[name], d)
			}
			if d, ok := s.precond[name]; ok {
				t.precond[name] = append(t.precond[name], d)
			}
		}
	}
	return t
}

// stepMedians is the median time of each step of one mode, as breakdown
// prints it; nil when the mode has no steps.
func stepMedians(all []*switchover, mode string) map[string]med {
	t := stepTimesOf(all, mode)
	if len(t.order) == 0 {
		return nil
	}
	m := make(map[string]med, len(t.order))
	for _, name := range t.order {
		m[name] = med{ms(median(t.steps[name]))}
	}
	return m
}

// breakdown prints the median time of each step of one mode, in run order.
func breakdown(w io.Writer, all []*switchover, mode string, total float64) {
	t := stepTimesOf(all, mode)
	rows := [][]string{{"step", "section", "median ms", "in preconditions", "share"}}
	for _, name := range t.order {
		d := median(t.steps[name])
		pre := "-"
		if len(t.precond[name]) > 0 {
			pre = ms(median(t.precond[name])).String()
		}
		share := "-"
		if total > 0 {
			share = fmt.Sprintf("%.0f%%", 100*d/total)
		}
		rows = append(rows, []string{name, string(t.section[name]), ms(d).String(), pre, share})
	}
	rows = append(rows, []string{"whole switchover", "", ms(total).String(), "", ""})
	table(w, rows, 2)
}

// table prints rows in aligned columns, indented: the first left columns
// flush left (names), the others flush right (figures).
func table(w io.Writer, rows [][]string, left int) {
	var width []int
	for _, r := range rows {
		for i, c := range r {
			if i == len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], len(c))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		b.WriteString("  ")
		for i, c := range r {
			if i < left {
				fmt.Fprintf(&b, "  %-*s", width[i], c)
			} else {
				fmt.Fprintf(&b, "  %*s", width[i], c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// Where the held window begins and ends: the pause's action, and the
// step whose action lets the clients go on.
const (
	windowFirst = "pause-pooler"
	windowLast  = "resume-pooler"
)

// windowStep is one step inside the held window, by phase: the median ms
// of its preconditions (checks, approval), of its action, and of its
// postconditions with their polls (ensures), over one mode's switchovers.
type windowStep struct {
	Step    string `json:"step"`
	Checks  ms     `json:"checks_ms"`
	Action  ms     `json:"action_ms"`
	Ensures ms     `json:"ensures_ms"`
}

// windowOf is the steps from windowFirst to windowLast, in run order,
// with their medians by phase; nil when the mode has none.
func windowOf(all []*switchover, mode string) []windowStep {
	t := stepTimesOf(all, mode)
	var out []windowStep
	in := false
	for _, name := range t.order {
		if name == windowFirst {
			in = true
		}
		if !in || t.section[name] != spec.SectionSteps {
			continue
		}
		var checks, action, ensures []float64
		for _, s := range all {
			if s.mode != mode {
				continue
			}
			if ph, ok := s.phases[name]; ok {
				checks, action, ensures = append(checks, ph.checks), append(action, ph.action), append(ensures, ph.ensures)
			}
		}
		out = append(out, windowStep{Step: name, Checks: ms(median(checks)), Action: ms(median(action)), Ensures: ms(median(ensures))})
		if name == windowLast {
			break
		}
	}
	return out
}

// windowTable prints the window's steps by phase. The pause step's checks
// run before the clients are held; its action is the PAUSE itself.
func windowTable(w io.Writer, steps []windowStep) {
	if len(steps) == 0 {
		fmt.Fprintln(w, "  (no step between the pause and the resume)")
		return
	}
	rows := [][]string{{"step", "checks ms", "action ms", "ensures ms", "total"}}
	var sum float64
	for _, st := range steps {
		total := float64(st.Checks + st.Action + st.Ensures)
		if st.Step == windowFirst {
			total = float64(st.Action + st.Ensures) // its checks come before the hold
		}
		sum += total
		rows = append(rows, []string{st.Step, st.Checks.String(), st.Action.String(), st.Ensures.String(), ms(total).String()})
	}
	rows = append(rows, []string{"held (sum of the medians)", "", "", "", ms(sum).String()})
	table(w, rows, 1)
	fmt.Fprintf(w, "  (%s's checks run before the clients are held)\n", windowFirst)
}

// goals sets the run's windows beside what they are held to: the pooler
// window steady (max within 1.5x its median), ssh, direct, a loaded pooler
// and 8 standbys each measured against the pooler's median of the same
// run. A mode that did not run has no row.
func goals(w io.Writer, all []*switchover) {
	pooler := statsOf(all, modePooler)
	base := median(pooler.window)
	if base <= 0 {
		return
	}
	rows := [][]string{{"figure", "measured", "goal"}}
	ratio := func(x float64) string { return fmt.Sprintf("%.2fx", x/base) }
	rows = append(rows, []string{"pooler window median", ms(base).String() + " ms", "≤ 80 ms"},
		[]string{"pooler window max / median", ratio(maxOf(pooler.window)), "≤ 1.50x"})
	for _, g := range []struct {
		mode, what, goal string
		max              bool
	}{
		{modeDirect, "direct median / pooler median", "≤ 1.00x", false},
		{modeSSH, "ssh median / pooler median", "≤ 1.25x", false},
		{modeEight, "8 standbys median / pooler median", "≤ 1.30x", false},
		{modeLoad, "under load, longest stall / pooler median", "≤ 1.50x", true},
	} {
		s := statsOf(all, g.mode)
		if len(s.window) == 0 {
			continue
		}
		x := median(s.window)
		if g.max {
			x = maxOf(s.window)
		}
		rows = append(rows, []string{g.what, ratio(x), g.goal})
	}
	fmt.Fprintln(w, "== against the goals (the same run)")
	table(w, rows, 1)
}
