package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/runbook/spec"
)

// TestRepmgrBench runs the repmgr comparison alone, with
// SWITCHOVER_BENCH_REPMGR=N (N round trips per way); it takes minutes.
func TestRepmgrBench(t *testing.T) {
	runs, _ := strconv.Atoi(os.Getenv("SWITCHOVER_BENCH_REPMGR"))
	if runs < 1 {
		t.Skip("set SWITCHOVER_BENCH_REPMGR=N to run the repmgr comparison, N round trips per way")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if err := RunRepmgr(ctx, Options{Runs: runs, Out: os.Stdout, Log: testLog{t}}); err != nil {
		t.Fatal(err)
	}
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) { l.t.Log(string(p)); return len(p), nil }

// managerRow is a measured switchover of a manager comparison with the
// step times its to_writes_ms and steps_ms read.
func managerRow(mode string, window float64, errors int, total float64, steps ...any) *switchover {
	s := row(mode, window, errors, 0, total, 0)
	s.steps, s.section = map[string]float64{}, map[string]spec.Section{}
	for i := 0; i+1 < len(steps); i += 2 {
		name := steps[i].(string)
		s.order = append(s.order, name)
		s.steps[name] = float64(steps[i+1].(int))
		s.section[name] = spec.SectionSteps
	}
	return s
}

// TestReportManagerRows holds the repmgr and pg_auto_failover parts of the
// last line: "repmgr" and "pg_auto_failover" shaped like "patroni" (the
// playbook beside the manager's own command), null with a _skipped reason
// when the manager is not installed or a way could not run, null alone
// when the comparison was not part of the run; and the summary tables
// print the figures the JSON carries.
func TestReportManagerRows(t *testing.T) {
	t.Parallel()
	repmgrRows := func() []*switchover {
		return []*switchover{
			managerRow(modeRepmgrPlaybook, 1300, 0, 5000, "preflight", 200, "pause-pooler", 10, "stop-primary", 300, "promote", 250, "repoint-pooler", 40, "resume-pooler", 20),
			managerRow(modeRepmgrPlaybook, 1400, 0, 6000, "preflight", 300, "pause-pooler", 20, "stop-primary", 400, "promote", 350, "repoint-pooler", 60, "resume-pooler", 30),
			managerRow(modeRepmgrOwn, 8000, 300, 9000),
			managerRow(modeRepmgrOwn, 10000, 446, 11000),
		}
	}
	repmgrWith := func(own bool) *repmgrResult {
		r := &repmgrResult{rows: repmgrRows()}
		if !own {
			r.rows = r.rows[:2]
		}
		r.tally(own)
		return r
	}
	pgaf := &pgafResult{rows: []*switchover{
		managerRow(modePgafPlaybook, 5000, 1, 12000, "preflight", 400, "switchover", 3000, "repoint-pooler", 100, "resume-pooler", 50),
		managerRow(modePgafPlaybook, 6000, 2, 14000, "preflight", 600, "switchover", 4000, "repoint-pooler", 200, "resume-pooler", 100),
		managerRow(modePgAutoctl, 9500, 1300, 10000),
		managerRow(modePgAutoctl, 11500, 1411, 12000),
	}}
	pgaf.tally()

	const (
		repmgrPlaybookJSON = `{"window_ms":{"min":1300.0,"median":1350.0,"max":1400.0},"client_errors":0,"lost":0,` +
			`"switchover_ms":{"median":5500.0},"to_writes_ms":{"median":740.0},` +
			`"steps_ms":{"pause-pooler":{"median":15.0},"preflight":{"median":250.0},"promote":{"median":300.0},` +
			`"repoint-pooler":{"median":50.0},"resume-pooler":{"median":25.0},"stop-primary":{"median":350.0}}}`
		repmgrOwnJSON = `{"window_ms":{"min":8000.0,"median":9000.0,"max":10000.0},"client_errors":746,"lost":0,` +
			`"switchover_ms":{"median":10000.0},"to_writes_ms":{"median":10000.0}}`
		pgafJSON = `"pg_auto_failover":{` +
			`"playbook":{"window_ms":{"min":5000.0,"median":5500.0,"max":6000.0},"client_errors":3,"lost":0,` +
			`"switchover_ms":{"median":13000.0},"to_writes_ms":{"median":3725.0},` +
			`"steps_ms":{"preflight":{"median":500.0},"repoint-pooler":{"median":150.0},"resume-pooler":{"median":75.0},"switchover":{"median":3500.0}}},` +
			`"pg_autoctl":{"window_ms":{"min":9500.0,"median":10500.0,"max":11500.0},"client_errors":2711,"lost":0,` +
			`"switchover_ms":{"median":11000.0},"to_writes_ms":{"median":11000.0}}}`
		noRepmgr = "repmgr, repmgrd not found on the PATH"
		noPgaf   = "pg_autoctl not found on the PATH"
	)
	tests := []struct {
		name     string
		extras   []extraRow
		wantTail string   // the last line's end, after "haproxy_checks_only":null,
		wantRows []string // summary lines, their fields separated by single spaces
	}{
		{"both present", []extraRow{repmgrWith(true), pgaf},
			`"repmgr":{"playbook":` + repmgrPlaybookJSON + `,"repmgr_standby_switchover":` + repmgrOwnJSON + `},` + pgafJSON + `}`,
			[]string{
				"repmgr playbook 1300.0 1350.0 1400.0 0 0 5500.0 740.0",
				"repmgr own 8000.0 9000.0 10000.0 746 0 10000.0 10000.0",
				"pgaf playbook 5000.0 5500.0 6000.0 3 0 13000.0 3725.0",
				"pg_autoctl 9500.0 10500.0 11500.0 2711 0 11000.0 11000.0",
				"stop-primary steps 350.0 - 6%",
			}},
		{"repmgr's own switchover without sshd", []extraRow{repmgrWith(false), pgaf},
			`"repmgr":{"playbook":` + repmgrPlaybookJSON + `,"repmgr_standby_switchover":null,"repmgr_standby_switchover_skipped":"` + repmgrOwnSkipped + `"},` + pgafJSON + `}`,
			[]string{
				"repmgr playbook 1300.0 1350.0 1400.0 0 0 5500.0 740.0",
				"repmgr own: skipped (" + repmgrOwnSkipped + ")",
			}},
		{"both not installed", []extraRow{&repmgrResult{skipped: noRepmgr}, &pgafResult{skipped: noPgaf}},
			`"repmgr":null,"repmgr_skipped":"` + noRepmgr + `","pg_auto_failover":null,"pg_auto_failover_skipped":"` + noPgaf + `"}`,
			[]string{"== repmgr: skipped (" + noRepmgr + ")", "== pg_auto_failover: skipped (" + noPgaf + ")"}},
		{"not part of the run", nil, `"repmgr":null,"pg_auto_failover":null}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			if err := report(&out, 1, []*switchover{row(modePooler, 300, 0, 0, 1000, 200)}, []float64{90}, []float64{250}, nil, nil, "", tt.extras...); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			last := lines[len(lines)-1]
			if want := `"haproxy_checks_only":null,` + tt.wantTail; !strings.HasSuffix(last, want) {
				t.Errorf("last line\n%s\nwant it to end\n%s", last, want)
			}
			var v map[string]any
			if err := json.Unmarshal([]byte(last), &v); err != nil {
				t.Fatalf("the last line is not JSON: %v", err)
			}
			for _, key := range []string{"runs", "pooler", "direct", "ssh", "patroni", "haproxy", "repmgr", "pg_auto_failover"} {
				if _, ok := v[key]; !ok {
					t.Errorf("the last line has no %q", key)
				}
			}
			var summary []string
			for _, l := range lines[:len(lines)-1] {
				summary = append(summary, strings.Join(strings.Fields(l), " "))
			}
			for _, want := range tt.wantRows {
				if !slices.Contains(summary, want) {
					t.Errorf("the summary has no line %q:\n%s", want, out.String())
				}
			}
		})
	}
}
