package main

import (
	"sort"
	"strconv"
)

// ms is a duration in milliseconds with one decimal, as a JSON number.
type ms float64

func (m ms) String() string { return strconv.FormatFloat(float64(m), 'f', 1, 64) }

// MarshalJSON writes the figure as printed: one decimal.
func (m ms) MarshalJSON() ([]byte, error) { return []byte(m.String()), nil }

// spread is the least, the median and the greatest of a set of figures.
type spread struct {
	Min    ms `json:"min"`
	Median ms `json:"median"`
	Max    ms `json:"max"`
}

func spreadOf(xs []float64) spread { return spread{ms(minOf(xs)), ms(median(xs)), ms(maxOf(xs))} }

type med struct {
	Median ms `json:"median"`
}

// modeResult is one mode's figures in the last line.
type modeResult struct {
	Window       spread `json:"window_ms"`
	ClientErrors int    `json:"client_errors"`
	Lost         int    `json:"lost"`
}

type preflightResult struct {
	Standbys2 med `json:"standbys_2"`
	Standbys8 med `json:"standbys_8"`
}

// result is the last line: the figures a script or a later README reads.
type result struct {
	Runs       int         `json:"runs"`
	Pooler     modeResult  `json:"pooler"`
	Direct     modeResult  `json:"direct"`
	SSH        *modeResult `json:"ssh"`                   // null when the ssh mode did not run
	SSHSkipped string      `json:"ssh_skipped,omitempty"` // why it did not (not root)
	// SSHSessions is the ssh mode with a session per command (no shell
	// on the hosts), alternated with it in the same run.
	SSHSessions   *modeResult     `json:"ssh_sessions,omitempty"`
	Preconditions med             `json:"preconditions_ms"`
	Switchover    med             `json:"switchover_ms"`
	Preflight     preflightResult `json:"preflight_ms"`
	Patroni       *patroniResult  `json:"patroni"` // null when Patroni or etcd is not installed
	// TwoPoolers is the two-PgBouncer switchovers' figures.
	TwoPoolers *modeResult `json:"two_poolers,omitempty"`
	// LogicalCutover is the blue/green cutovers' figures (logical-cutover
	// both ways on a sandbox with green1); null when the row did not run.
	LogicalCutover *logicalResult `json:"logical_cutover"`
	// HAProxy and HAProxyChecksOnly: the patroni playbook through HAProxy,
	// driving it and leaving it to its checks; null without haproxy or Patroni.
	HAProxy           *haproxyMode `json:"haproxy"`
	HAProxyChecksOnly *haproxyMode `json:"haproxy_checks_only"`
	// Repmgr and PgAutoFailover: each shipped playbook beside the
	// manager's own switchover command; null when the manager is not
	// installed, and then the _skipped string says why.
	Repmgr                *repmgrResult `json:"repmgr"`
	RepmgrSkipped         string        `json:"repmgr_skipped,omitempty"`
	PgAutoFailover        *pgafResult   `json:"pg_auto_failover"`
	PgAutoFailoverSkipped string        `json:"pg_auto_failover_skipped,omitempty"`
	// Window is the pooler mode's held window, step by step and phase by
	// phase (medians): where each millisecond clients wait goes.
	Window []windowStep `json:"window_breakdown,omitempty"`
	// UnderLoad is the pooler mode while pgbench writes through the same
	// PgBouncer; EightStandbys the pooler mode with 8 standbys.
	UnderLoad     *loadResult `json:"under_load,omitempty"`
	EightStandbys *modeResult `json:"eight_standbys,omitempty"`
}

// loadResult is the loaded mode's figures and what pgbench went through.
type loadResult struct {
	modeResult
	Pgbench *loadFigures `json:"pgbench,omitempty"`
}

// patroniResult is the Patroni part of the last line; the rows stay out of
// the JSON.
type patroniResult struct {
	Playbook   modeResult `json:"playbook"`
	Patronictl modeResult `json:"patronictl"`
	rows       []*switchover
}

// managerMode is one way of a cluster manager comparison (repmgr,
// pg_auto_failover) in the last line: the canary's figures, and the
// medians the summary prints beside them, so that a script compares the
// playbook with the manager's own command without parsing tables.
type managerMode struct {
	modeResult
	// Switchover is the whole run: the playbook's, or the manager's
	// command until the pooler takes writes, the hand repoint included.
	Switchover med `json:"switchover_ms"`
	// ToWrites is the time until the pooler takes writes on the new
	// primary, as the comparison's to_writes_ms column counts it.
	ToWrites med `json:"to_writes_ms"`
	// Steps is the median of every step, for the playbook only (the
	// manager's own command has no steps).
	Steps map[string]med `json:"steps_ms,omitempty"`
}

// managerModeOf gathers one way's figures from the rows of a comparison:
// toWrites is how that comparison counts the time to writes, and steps
// says whether the per-step medians go in.
func managerModeOf(rows []*switchover, mode string, toWrites func(*switchover) float64, steps bool) managerMode {
	s := statsOf(rows, mode)
	var to []float64
	for _, r := range rows {
		if r.mode == mode {
			to = append(to, toWrites(r))
		}
	}
	m := managerMode{modeResult: s.result(), Switchover: med{ms(median(s.total))}, ToWrites: med{ms(median(to))}}
	if steps {
		m.Steps = stepMedians(rows, mode)
	}
	return m
}

// summaryRow is the way's row in a comparison's summary table.
func (m managerMode) summaryRow(way string) []string {
	return []string{way, m.Window.Min.String(), m.Window.Median.String(), m.Window.Max.String(),
		strconv.Itoa(m.ClientErrors), strconv.Itoa(m.Lost), m.Switchover.Median.String(), m.ToWrites.Median.String()}
}

// modeStats are one mode's figures over all its switchovers.
type modeStats struct {
	window       []float64
	errors, lost int
	total        []float64
	precond      []float64
}

// statsOf gathers the figures of every switchover of one mode: the
// windows, switchover and precondition times one per switchover, the
// client errors and lost commits summed.
func statsOf(all []*switchover, mode string) modeStats {
	var m modeStats
	for _, s := range all {
		if s.mode != mode {
			continue
		}
		m.window = append(m.window, s.windowMS)
		m.errors += s.errors
		m.lost += s.lost
		m.total = append(m.total, s.totalMS)
		m.precond = append(m.precond, s.precondMS)
	}
	return m
}

// result is the mode's part of the last line.
func (m modeStats) result() modeResult {
	return modeResult{Window: spreadOf(m.window), ClientErrors: m.errors, Lost: m.lost}
}

// resultOf builds the last line from every switchover and the preflight
// times: switchover_ms and preconditions_ms are the pooler mode's medians.
func resultOf(runs int, all []*switchover, pre2, pre8 []float64, pat *patroniResult) result {
	pooler, direct := statsOf(all, modePooler), statsOf(all, modeDirect)
	return result{
		Runs:          runs,
		Pooler:        pooler.result(),
		Direct:        direct.result(),
		Preconditions: med{ms(median(pooler.precond))},
		Switchover:    med{ms(median(pooler.total))},
		Preflight:     preflightResult{Standbys2: med{ms(median(pre2))}, Standbys8: med{ms(median(pre8))}},
		Patroni:       pat,
	}
}

// median is the middle figure, or the mean of the two middle ones; 0 for
// none. xs is left as it was.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// minOf is the least figure; 0 for none.
func minOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	m := xs[0]
	for _, x := range xs[1:] {
		m = min(m, x)
	}
	return m
}

// maxOf is the greatest figure; 0 for none.
func maxOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	m := xs[0]
	for _, x := range xs[1:] {
		m = max(m, x)
	}
	return m
}
