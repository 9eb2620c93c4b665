// Package metrics writes a run's figures for node_exporter's textfile
// collector: a few gauges about the last run, labelled with its runbook
// and cluster, written to a temporary file beside the target and renamed
// over it, so that the collector never reads half a file.
package metrics

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Run is what the metrics file says of one run. A figure the run did not
// record (no canary writer ran) is nil and its gauge is left out.
type Run struct {
	Runbook  string // the runbook's name
	Cluster  string
	Finished time.Time
	ExitCode int
	Duration time.Duration
	// WindowMS is the canary writer's longest time without a commit
	// through the client-facing endpoint, in milliseconds.
	WindowMS     *float64
	LostCommits  *int64
	ClientErrors *int64
}

// The gauges' names; they are stable, dashboards and alerts read them.
const (
	NameTimestamp    = "switchover_last_run_timestamp_seconds"
	NameSuccess      = "switchover_last_run_success"
	NameExitCode     = "switchover_last_run_exit_code"
	NameDuration     = "switchover_last_run_duration_seconds"
	NameClientWindow = "switchover_last_run_client_window_seconds"
	NameLostCommits  = "switchover_last_run_lost_commits"
	NameClientErrors = "switchover_last_run_client_errors"
)

// WriteFile writes r's gauges to path in the text exposition format,
// atomically (a temporary file in the same directory, renamed over path).
func WriteFile(path string, r Run) error {
	reg := prometheus.NewRegistry()
	labels := prometheus.Labels{"runbook": r.Runbook, "cluster": r.Cluster}
	gauge := func(name, help string, v float64) {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels})
		g.Set(v)
		reg.MustRegister(g)
	}
	success := 0.0
	if r.ExitCode == 0 {
		success = 1
	}
	gauge(NameTimestamp, "When the last switchover run ended, in seconds since the epoch.", float64(r.Finished.UnixMilli())/1000)
	gauge(NameSuccess, "1 when the last switchover run ended with exit code 0, else 0.", success)
	gauge(NameExitCode, "The exit code of the last switchover run (0 done; the others as switchover run --help lists them).", float64(r.ExitCode))
	gauge(NameDuration, "How long the last switchover run took, in seconds.", float64(r.Duration.Milliseconds())/1000)
	if r.WindowMS != nil {
		gauge(NameClientWindow, "The longest time the canary writer could not commit through the client-facing endpoint during the last run, in seconds.", msToSeconds(*r.WindowMS))
	}
	if r.LostCommits != nil {
		gauge(NameLostCommits, "Acknowledged commits of the canary writer not found after the last run (must be 0).", float64(*r.LostCommits))
	}
	if r.ClientErrors != nil {
		gauge(NameClientErrors, "Errors the canary writer got during the last run.", float64(*r.ClientErrors))
	}
	if err := prometheus.WriteToTextfile(path, reg); err != nil {
		// The error names the temporary file; say what was written where.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return fmt.Errorf("metrics file %s: %w (writing a temporary file in %s to rename over it)", path, pe.Err, filepath.Dir(path))
		}
		return fmt.Errorf("metrics file %s: %w", path, err)
	}
	return nil
}

// msToSeconds turns milliseconds (to a tenth) into seconds that print as
// they read: 153.1 ms is 0.1531, not 0.15309999999999999.
func msToSeconds(ms float64) float64 {
	return math.Round(ms*1000) / 1e6
}
