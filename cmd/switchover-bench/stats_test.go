package main

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"
)

func TestSpread(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		xs            []float64
		min, med, max float64
	}{
		{"none", nil, 0, 0, 0},
		{"one", []float64{412.5}, 412.5, 412.5, 412.5},
		{"odd, unsorted", []float64{900, 120, 450}, 120, 450, 900},
		{"even: the mean of the middle two", []float64{400, 100, 300, 200}, 100, 250, 400},
		{"repeated figures", []float64{7, 7, 7, 1}, 1, 7, 7},
		{"an outlier moves max, not median", []float64{300, 310, 305, 9000, 302}, 300, 305, 9000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			before := append([]float64(nil), tt.xs...)
			if got := minOf(tt.xs); got != tt.min {
				t.Errorf("minOf(%v) = %v, want %v", tt.xs, got, tt.min)
			}
			if got := median(tt.xs); got != tt.med {
				t.Errorf("median(%v) = %v, want %v", tt.xs, got, tt.med)
			}
			if got := maxOf(tt.xs); got != tt.max {
				t.Errorf("maxOf(%v) = %v, want %v", tt.xs, got, tt.max)
			}
			if !reflect.DeepEqual(tt.xs, before) {
				t.Errorf("the figures changed order: %v, were %v", tt.xs, before)
			}
			if got, want := spreadOf(tt.xs), (spread{ms(tt.min), ms(tt.med), ms(tt.max)}); got != want {
				t.Errorf("spreadOf = %+v, want %+v", got, want)
			}
		})
	}
}

// row is a measured switchover with only the figures the statistics read.
func row(mode string, window float64, errors, lost int, total, precond float64) *switchover {
	return &switchover{mode: mode, windowMS: window, errors: errors, lost: lost, timing: timing{totalMS: total, precondMS: precond}}
}

func TestStatsOf(t *testing.T) {
	t.Parallel()
	all := []*switchover{
		row(modePooler, 400, 0, 0, 1300, 200),
		row(modeDirect, 300, 11, 0, 1100, 230),
		row(modePooler, 350, 1, 0, 1000, 180),
		row(modeDirect, 420, 13, 2, 1200, 150),
		row(modePatronictl, 3700, 1, 0, 5400, 0),
	}
	tests := []struct {
		mode string
		want modeStats
	}{
		{modePooler, modeStats{window: []float64{400, 350}, errors: 1, lost: 0, total: []float64{1300, 1000}, precond: []float64{200, 180}}},
		{modeDirect, modeStats{window: []float64{300, 420}, errors: 24, lost: 2, total: []float64{1100, 1200}, precond: []float64{230, 150}}},
		{modePatronictl, modeStats{window: []float64{3700}, errors: 1, total: []float64{5400}, precond: []float64{0}}},
		{modePatroniPlaybook, modeStats{}},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			if got := statsOf(all, tt.mode); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("statsOf(%s) = %+v, want %+v", tt.mode, got, tt.want)
			}
		})
	}
}

func TestResultOf(t *testing.T) {
	t.Parallel()
	// Figures exact in binary, so that the medians compare exactly.
	all := []*switchover{
		row(modePooler, 394.5, 0, 0, 1368.5, 212.5),
		row(modePooler, 345.5, 2, 0, 1054.5, 186.25),
		row(modeDirect, 289.5, 11, 0, 1121, 231.75),
		row(modeDirect, 420, 13, 1, 1169.5, 146.5),
		row(modeDirect, 300, 0, 0, 1150, 150),
	}
	got := resultOf(1, all, []float64{96.25}, []float64{250, 270}, nil)
	want := result{
		Runs:          1,
		Pooler:        modeResult{Window: spread{345.5, 370, 394.5}, ClientErrors: 2, Lost: 0},
		Direct:        modeResult{Window: spread{289.5, 300, 420}, ClientErrors: 24, Lost: 1},
		Preconditions: med{199.375}, // the pooler mode's
		Switchover:    med{1211.5},  // the pooler mode's
		Preflight:     preflightResult{Standbys2: med{96.25}, Standbys8: med{260}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("resultOf =\n%+v\nwant\n%+v", got, want)
	}
}

// TestReportLastLine holds the last line's shape: the field names and
// nesting scripts read, and figures with one decimal.
func TestReportLastLine(t *testing.T) {
	t.Parallel()
	all := []*switchover{
		row(modePooler, 394.3, 0, 0, 1368.5, 212.5),
		row(modePooler, 345.5, 0, 0, 1054.5, 186.3),
		row(modeDirect, 289.6, 11, 0, 1121.1, 231.7),
		row(modeDirect, 419.8, 13, 0, 1169.5, 146.7),
	}
	pat := &patroniResult{rows: []*switchover{
		row(modePatroniPlaybook, 2040, 0, 0, 10632.7, 300),
		row(modePatroniPlaybook, 2071.4, 0, 0, 9229.4, 280),
		row(modePatronictl, 3714.2, 1, 0, 5437, 0),
		row(modePatronictl, 3463.4, 0, 0, 6364.6, 0),
	}}
	pat.Playbook = statsOf(pat.rows, modePatroniPlaybook).result()
	pat.Patronictl = statsOf(pat.rows, modePatronictl).result()
	withSSH := append(append([]*switchover(nil), all...),
		row(modeSSH, 410.2, 0, 0, 1900.4, 420.5),
		row(modeSSH, 380.9, 0, 0, 1800.6, 400.1))
	tests := []struct {
		name    string
		all     []*switchover
		pat     *patroniResult
		sshSkip string
		want    string
	}{
		{"with ssh", withSSH, nil, "",
			`{"runs":1,` +
				`"pooler":{"window_ms":{"min":345.5,"median":369.9,"max":394.3},"client_errors":0,"lost":0},` +
				`"direct":{"window_ms":{"min":289.6,"median":354.7,"max":419.8},"client_errors":24,"lost":0},` +
				`"ssh":{"window_ms":{"min":380.9,"median":395.5,"max":410.2},"client_errors":0,"lost":0},` +
				`"preconditions_ms":{"median":199.4},"switchover_ms":{"median":1211.5},` +
				`"preflight_ms":{"standbys_2":{"median":96.3},"standbys_8":{"median":260.0}},` +
				`"patroni":null,"logical_cutover":null,"haproxy":null,"haproxy_checks_only":null,"repmgr":null,"pg_auto_failover":null}`},
		{"ssh skipped", all, nil, "not root (uid 1000): hosts of their own need network namespaces and an sshd per host",
			`{"runs":1,` +
				`"pooler":{"window_ms":{"min":345.5,"median":369.9,"max":394.3},"client_errors":0,"lost":0},` +
				`"direct":{"window_ms":{"min":289.6,"median":354.7,"max":419.8},"client_errors":24,"lost":0},` +
				`"ssh":null,"ssh_skipped":"not root (uid 1000): hosts of their own need network namespaces and an sshd per host",` +
				`"preconditions_ms":{"median":199.4},"switchover_ms":{"median":1211.5},` +
				`"preflight_ms":{"standbys_2":{"median":96.3},"standbys_8":{"median":260.0}},` +
				`"patroni":null,"logical_cutover":null,"haproxy":null,"haproxy_checks_only":null,"repmgr":null,"pg_auto_failover":null}`},
		{"without patroni", all, nil, "",
			`{"runs":1,` +
				`"pooler":{"window_ms":{"min":345.5,"median":369.9,"max":394.3},"client_errors":0,"lost":0},` +
				`"direct":{"window_ms":{"min":289.6,"median":354.7,"max":419.8},"client_errors":24,"lost":0},` +
				`"ssh":null,` +
				`"preconditions_ms":{"median":199.4},"switchover_ms":{"median":1211.5},` +
				`"preflight_ms":{"standbys_2":{"median":96.3},"standbys_8":{"median":260.0}},` +
				`"patroni":null,"logical_cutover":null,"haproxy":null,"haproxy_checks_only":null,"repmgr":null,"pg_auto_failover":null}`},
		{"with patroni", all, pat, "",
			`{"runs":1,` +
				`"pooler":{"window_ms":{"min":345.5,"median":369.9,"max":394.3},"client_errors":0,"lost":0},` +
				`"direct":{"window_ms":{"min":289.6,"median":354.7,"max":419.8},"client_errors":24,"lost":0},` +
				`"ssh":null,` +
				`"preconditions_ms":{"median":199.4},"switchover_ms":{"median":1211.5},` +
				`"preflight_ms":{"standbys_2":{"median":96.3},"standbys_8":{"median":260.0}},` +
				`"patroni":{"playbook":{"window_ms":{"min":2040.0,"median":2055.7,"max":2071.4},"client_errors":0,"lost":0},` +
				`"patronictl":{"window_ms":{"min":3463.4,"median":3588.8,"max":3714.2},"client_errors":1,"lost":0}},` +
				`"logical_cutover":null,"haproxy":null,"haproxy_checks_only":null,"repmgr":null,"pg_auto_failover":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			if err := report(&out, 1, tt.all, []float64{96.3}, []float64{250, 270}, tt.pat, nil, tt.sshSkip); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			last := lines[len(lines)-1]
			if last != tt.want {
				t.Errorf("last line\n%s\nwant\n%s\nwhole report:\n%s", last, tt.want, out.String())
			}
			var v map[string]any
			if err := json.Unmarshal([]byte(last), &v); err != nil {
				t.Errorf("the last line is not JSON: %v", err)
			}
			if !strings.Contains(out.String(), "== summary: 2 switchovers per mode (1 round trip pg1 -> pg2 -> pg1)") {
				t.Errorf("no summary in the report:\n%s", out.String())
			}
			for _, want := range sshLines(tt.all, tt.sshSkip) {
				if !strings.Contains(out.String(), want) {
					t.Errorf("the report lacks %q:\n%s", want, out.String())
				}
			}
		})
	}
}

// sshLines are lines the human report must hold about the ssh mode: its
// summary row and the per-step table beside local, or why it was skipped.
func sshLines(all []*switchover, skipped string) []string {
	if skipped != "" {
		return []string{"== over ssh: skipped (" + skipped + ")"}
	}
	if len(statsOf(all, modeSSH).window) == 0 {
		return nil
	}
	return []string{
		"ssh             380.9   395.5  410.2",
		"== over ssh beside local: median per step (2 switchovers each); ssh window / local pooler window: 1.07x",
		"clients held (window)",
	}
}

// at is an event at a millisecond offset.
func at(offsetMS int, ev journal.Event) journal.Event {
	ev.Time = time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC).Add(time.Duration(offsetMS) * time.Millisecond)
	return ev
}

func step(offsetMS int, sec spec.Section, name string, state journal.StepState) journal.Event {
	return at(offsetMS, journal.Event{Type: journal.EventStep, Section: sec, Step: name, State: state})
}

func fact(key, value string) journal.Event {
	return journal.Event{Type: journal.EventFact, Fact: &journal.Fact{Key: key, Value: value}}
}

func TestAnalyse(t *testing.T) {
	t.Parallel()
	main, fin := spec.SectionSteps, spec.SectionFinally
	evs := []journal.Event{
		at(0, journal.Event{Type: journal.EventRunStarted}),
		step(10, main, "preflight", journal.StateChecking),
		step(110, main, "preflight", journal.StateDone),
		step(120, main, "promote", journal.StateChecking),
		step(150, main, "promote", journal.StateAwaitingApproval),
		step(160, main, "promote", journal.StateRunning),
		step(600, main, "promote", journal.StateVerifying),
		step(720, main, "promote", journal.StateDone),
		step(730, fin, "resume-pooler", journal.StateChecking),
		step(740, fin, "resume-pooler", journal.StateRunning),
		step(760, fin, "resume-pooler", journal.StateDone),
		at(800, journal.Event{Type: journal.EventRunFinished}),
	}
	got := analyse(evs)
	want := timing{
		totalMS:   800,
		precondMS: 100 + 30,
		steps:     map[string]float64{"preflight": 100, "promote": 600, "resume-pooler": 30},
		precond:   map[string]float64{"preflight": 100, "promote": 30},
		order:     []string{"preflight", "promote", "resume-pooler"},
		section:   map[string]spec.Section{"preflight": main, "promote": main, "resume-pooler": fin},
		// Main steps only: checks (and approval) until running, the
		// action until verifying, the ensures until done.
		phases: map[string]phaseTimes{"preflight": {checks: 100}, "promote": {checks: 40, action: 440, ensures: 120}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("analyse =\n%+v\nwant\n%+v", got, want)
	}
	if name, d := got.slowest(); name != "promote" || d != 600 {
		t.Errorf("slowest = %s %v, want promote 600", name, d)
	}
}

func TestMeasure(t *testing.T) {
	t.Parallel()
	timed := []journal.Event{
		at(0, journal.Event{Type: journal.EventRunStarted}),
		step(5, spec.SectionSteps, "promote", journal.StateChecking),
		step(25, spec.SectionSteps, "promote", journal.StateRunning),
		step(1500, spec.SectionSteps, "promote", journal.StateDone),
		at(1600, journal.Event{Type: journal.EventRunFinished}),
	}
	canaryFacts := func(endpoint, window, errors, lost, acked string) []journal.Event {
		var evs []journal.Event
		for _, kv := range [][2]string{
			{journal.FactCanaryEndpoint, endpoint}, {journal.FactCanaryWindowMS, window},
			{journal.FactCanaryErrors, errors}, {journal.FactCanaryLost, lost}, {journal.FactCanaryAcked, acked},
		} {
			if kv[1] != "-" {
				evs = append(evs, fact(kv[0], kv[1]))
			}
		}
		return evs
	}
	tests := []struct {
		name    string
		mode    string
		evs     []journal.Event
		want    *switchover
		wantErr string
	}{
		{name: "through the pooler", mode: modePooler,
			evs:  append(canaryFacts("pooler app on 127.0.0.1:6432", "394.3", "0", "0", "62"), timed...),
			want: &switchover{endpoint: "pooler app on 127.0.0.1:6432", windowMS: 394.3, errors: 0, lost: 0, acked: 62}},
		{name: "direct, errors and a lost commit", mode: modeDirect,
			evs:  append(canaryFacts("nodes pg1,pg2,pg3 read-write", "289.6", "11", "1", "56"), timed...),
			want: &switchover{endpoint: "nodes pg1,pg2,pg3 read-write", windowMS: 289.6, errors: 11, lost: 1, acked: 56}},
		{name: "the pooler mode wrote around the pooler", mode: modePooler,
			evs:     append(canaryFacts("nodes pg1,pg2,pg3", "1", "0", "0", "1"), timed...),
			wantErr: `the canary wrote through "nodes pg1,pg2,pg3"`},
		{name: "the direct mode wrote through a pooler", mode: modeDirect,
			evs:     append(canaryFacts("pooler app", "1", "0", "0", "1"), timed...),
			wantErr: `the canary wrote through "pooler app"`},
		{name: "a fact missing", mode: modePooler,
			evs:     append(canaryFacts("pooler", "1", "0", "-", "1"), timed...),
			wantErr: "the canary recorded no canary.lost"},
		{name: "a fact not a number", mode: modePooler,
			evs:     append(canaryFacts("pooler", "soon", "0", "0", "1"), timed...),
			wantErr: `fact canary.window_ms="soon"`},
		{name: "no run events", mode: modePooler,
			evs:     canaryFacts("pooler", "1", "0", "0", "1"),
			wantErr: "no run.started and run.finished events"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := measure(tt.evs, tt.mode, 3, "pg1", "pg2")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("measure: error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.mode != tt.mode || got.run != 3 || got.from != "pg1" || got.to != "pg2" {
				t.Errorf("measure labelled it %s %d %s->%s", got.mode, got.run, got.from, got.to)
			}
			if got.endpoint != tt.want.endpoint || got.windowMS != tt.want.windowMS || got.errors != tt.want.errors ||
				got.lost != tt.want.lost || got.acked != tt.want.acked {
				t.Errorf("measure = %+v, want %+v", got, tt.want)
			}
			if got.totalMS != 1600 || got.steps["promote"] != 1495 {
				t.Errorf("timing = %+v, want a 1600 ms run and a 1495 ms promote", got.timing)
			}
			// The step took over a second: its events explain it.
			if len(got.slowEvents) != 3 {
				t.Errorf("slow events = %q, want the promote step's three", got.slowEvents)
			}
		})
	}
}

func TestWithEntryPort(t *testing.T) {
	t.Parallel()
	const ini = ";; a comment: app = host=x port=1\n[databases]\n; app = port=2\napp = host=127.0.0.1 port=30387 dbname=app\nother = host=127.0.0.1 port=30387\n\n[pgbouncer]\nlisten_port = 30386\n"
	tests := []struct {
		name, text, db string
		want, wantErr  string
	}{
		{name: "the entry's port, nothing else", text: ini, db: "app",
			want: ";; a comment: app = host=x port=1\n[databases]\n; app = port=2\napp = host=127.0.0.1 port=30388 dbname=app\nother = host=127.0.0.1 port=30387\n\n[pgbouncer]\nlisten_port = 30386\n"},
		{name: "no such entry", text: ini, db: "shop", wantErr: "no entry shop"},
		{name: "an entry without a port", text: "[databases]\napp = host=127.0.0.1 dbname=app\n", db: "app", wantErr: "0 port= settings"},
		{name: "two entries", text: "[databases]\napp = port=1\napp = port=2\n", db: "app", wantErr: "more than one entry app"},
		{name: "outside [databases]", text: "[pgbouncer]\napp = port=1\n", db: "app", wantErr: "no entry app"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := withEntryPort(tt.text, tt.db, 30388)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestWithoutPooler(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, src, want, wantErr string
	}{
		{name: "the section goes, the rest stays",
			src:  "nodes:\n  pg1:\n    conninfo: host=127.0.0.1 port=1\npooler:\n  kind: pgbouncer\n  database: app\nmanager:\n  kind: none\n",
			want: "nodes:\n  pg1:\n    conninfo: host=127.0.0.1 port=1\nmanager:\n  kind: none\n"},
		{name: "no pooler", src: "nodes: {}\n", wantErr: "no pooler: section"},
		{name: "not a mapping", src: "- pg1\n", wantErr: "not a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := withoutPooler([]byte(tt.src))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// The held window's steps, from the pause to the resume, each by phase:
// medians over one mode's switchovers; the pause's checks come before the
// hold and are left out of the sum.
func TestWindowBreakdown(t *testing.T) {
	t.Parallel()
	main := spec.SectionSteps
	one := func(pause, stop, resume phaseTimes) *switchover {
		return &switchover{mode: modePooler, timing: timing{
			order:   []string{"preflight", "pause-pooler", "stop-primary", "resume-pooler", "verify"},
			section: map[string]spec.Section{"preflight": main, "pause-pooler": main, "stop-primary": main, "resume-pooler": main, "verify": main},
			phases:  map[string]phaseTimes{"preflight": {checks: 90}, "pause-pooler": pause, "stop-primary": stop, "resume-pooler": resume, "verify": {checks: 50}},
		}}
	}
	all := []*switchover{
		one(phaseTimes{checks: 30, action: 2}, phaseTimes{action: 40, ensures: 10}, phaseTimes{action: 3, ensures: 20}),
		one(phaseTimes{checks: 50, action: 4}, phaseTimes{action: 60, ensures: 30}, phaseTimes{action: 5, ensures: 40}),
		{mode: modeDirect},
	}
	got := windowOf(all, modePooler)
	want := []windowStep{
		{Step: "pause-pooler", Checks: 40, Action: 3},
		{Step: "stop-primary", Action: 50, Ensures: 20},
		{Step: "resume-pooler", Action: 4, Ensures: 30},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("windowOf = %+v, want %+v", got, want)
	}
	var b strings.Builder
	windowTable(&b, got)
	if !strings.Contains(b.String(), "held (sum of the medians)") || !strings.Contains(b.String(), "107.0") {
		t.Errorf("the window table does not sum to 107.0 ms held (3 + 70 + 34):\n%s", b.String())
	}
}

// The loaded and the 8-standby modes: their rows in the summary, their
// figures in the last line, and every mode beside the pooler's median in
// the goals table.
func TestReportLoadAndEightStandbys(t *testing.T) {
	t.Parallel()
	all := []*switchover{
		row(modePooler, 80, 0, 0, 1000, 200), row(modePooler, 100, 0, 0, 1000, 200),
		row(modeDirect, 70, 3, 0, 900, 200), row(modeDirect, 90, 5, 0, 900, 200),
		row(modeLoad, 110, 0, 0, 1100, 210), row(modeLoad, 150, 0, 0, 1200, 220),
		row(modeEight, 100, 0, 0, 1500, 400), row(modeEight, 120, 0, 0, 1600, 420),
	}
	var out bytes.Buffer
	load := &loadFigures{Clients: 8, Transactions: 5120, Aborted: 1}
	if err := report(&out, 1, all, []float64{90}, []float64{250}, nil, load, "not root"); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	var res struct {
		UnderLoad struct {
			Window  spread       `json:"window_ms"`
			Pgbench *loadFigures `json:"pgbench"`
		} `json:"under_load"`
		EightStandbys modeResult `json:"eight_standbys"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("the last line: %v", err)
	}
	if res.UnderLoad.Window.Median != 130 || res.UnderLoad.Window.Max != 150 || res.UnderLoad.Pgbench == nil || *res.UnderLoad.Pgbench != *load {
		t.Errorf("under_load = %+v", res.UnderLoad)
	}
	if res.EightStandbys.Window.Median != 110 {
		t.Errorf("eight_standbys = %+v", res.EightStandbys)
	}
	// The pooler median is 90 ms: direct 80 (0.89x), 8 standbys 110
	// (1.22x), the longest stall under load 150 (1.67x).
	for _, want := range []string{"under load", "8 standbys", "== against the goals",
		"pooler window median", "90.0 ms", "1.11x", "0.89x", "1.22x", "1.67x",
		"pgbench, 8 clients through the pooler: 5120 transactions committed, 1 client aborted"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, out.String())
		}
	}
}
