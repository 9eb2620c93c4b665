package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestReportHAProxyRows holds the HAProxy part of the report: the two ways
// side by side, and "haproxy" and "haproxy_checks_only" in the last line
// with the time until writes go through HAProxy again.
func TestReportHAProxyRows(t *testing.T) {
	t.Parallel()
	hrow := func(mode string, window float64, errors int, switchMS, routeMS float64) *switchover {
		s := row(mode, window, errors, 0, 9000, 300)
		s.steps = map[string]float64{"switchover": switchMS, "route-router": routeMS}
		return s
	}
	hx := &haproxyResult{rows: []*switchover{
		hrow(modeHAProxy, 2400, 800, 2600, 100),
		hrow(modeHAProxy, 2500, 840, 2700, 120),
		hrow(modeHAProxyChecks, 6000, 30, 2600, 4300),
		hrow(modeHAProxyChecks, 6400, 35, 2500, 4500),
	}}
	hx.Driven, hx.ChecksOnly = hx.mode(modeHAProxy), hx.mode(modeHAProxyChecks)
	var out bytes.Buffer
	if err := report(&out, 1, []*switchover{row(modePooler, 300, 0, 0, 1000, 200)}, []float64{90}, []float64{250}, nil, nil, "", hx); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	last := lines[len(lines)-1]
	want := `"patroni":null,"logical_cutover":null,` +
		`"haproxy":{"window_ms":{"min":2400.0,"median":2450.0,"max":2500.0},"client_errors":1640,"lost":0,"to_writes_ms":{"median":2760.0}},` +
		`"haproxy_checks_only":{"window_ms":{"min":6000.0,"median":6200.0,"max":6400.0},"client_errors":65,"lost":0,"to_writes_ms":{"median":6950.0}},` +
		`"repmgr":null,"pg_auto_failover":null}`
	if !strings.HasSuffix(last, want) {
		t.Errorf("last line\n%s\nwant it to end\n%s", last, want)
	}
	if !strings.Contains(out.String(), "== haproxy: 2 switchovers per way") || !strings.Contains(out.String(), "haproxy checks") {
		t.Errorf("no HAProxy summary in the report:\n%s", out.String())
	}
}
