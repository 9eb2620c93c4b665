package metrics

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// parse reads a metrics file with the Prometheus text parser.
func parse(t *testing.T, b []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("the metrics file does not parse: %v\n%s", err, b)
	}
	return mfs
}

// value is the one gauge of family name, after checking its labels.
func value(t *testing.T, mfs map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	mf, ok := mfs[name]
	if !ok {
		t.Fatalf("no %s", name)
	}
	if mf.GetType() != dto.MetricType_GAUGE || len(mf.Metric) != 1 {
		t.Fatalf("%s: type %s, %d series; want one gauge", name, mf.GetType(), len(mf.Metric))
	}
	m := mf.Metric[0]
	got := map[string]string{}
	for _, l := range m.Label {
		got[l.GetName()] = l.GetValue()
	}
	if len(got) != len(labels) {
		t.Errorf("%s: labels %v, want %v", name, got, labels)
	}
	for k, v := range labels {
		if got[k] != v {
			t.Errorf("%s: label %s=%q, want %q", name, k, got[k], v)
		}
	}
	return m.Gauge.GetValue()
}

func TestWriteFile(t *testing.T) {
	t.Parallel()
	window, lost, errs := 153.1, int64(0), int64(2)
	run := Run{
		Runbook: "postgres-streaming-switchover", Cluster: "main",
		Finished: time.Date(2026, 11, 21, 10, 30, 0, 500e6, time.UTC), ExitCode: 0, Duration: 4200 * time.Millisecond,
		WindowMS: &window, LostCommits: &lost, ClientErrors: &errs,
	}
	path := filepath.Join(t.TempDir(), "switchover.prom")
	if err := WriteFile(path, run); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	mfs := parse(t, b)
	labels := map[string]string{"runbook": "postgres-streaming-switchover", "cluster": "main"}
	for name, want := range map[string]float64{
		NameTimestamp:    1795257000.5,
		NameSuccess:      1,
		NameExitCode:     0,
		NameDuration:     4.2,
		NameClientWindow: 0.1531,
		NameLostCommits:  0,
		NameClientErrors: 2,
	} {
		if got := value(t, mfs, name, labels); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if len(mfs) != 7 {
		t.Errorf("%d families, want 7:\n%s", len(mfs), b)
	}
	if !strings.Contains(string(b), "} 0.1531\n") {
		t.Errorf("the window does not read 0.1531 (153.1 ms) in the file:\n%s", b)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644: node_exporter must read it", st.Mode().Perm())
	}
}

// A failed run without a canary: success 0, its exit code, and no gauge
// for a figure the run did not record.
func TestWriteFileOfAFailedRunWithoutCanary(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "switchover.prom")
	if err := WriteFile(path, Run{Runbook: "example", Cluster: "c", Finished: time.Unix(100, 0), ExitCode: 4, Duration: time.Second}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	mfs := parse(t, b)
	labels := map[string]string{"runbook": "example", "cluster": "c"}
	if v := value(t, mfs, NameSuccess, labels); v != 0 {
		t.Errorf("success %v, want 0", v)
	}
	if v := value(t, mfs, NameExitCode, labels); v != 4 {
		t.Errorf("exit code %v, want 4", v)
	}
	for _, name := range []string{NameClientWindow, NameLostCommits, NameClientErrors} {
		if _, ok := mfs[name]; ok {
			t.Errorf("%s written for a run that recorded no canary figures", name)
		}
	}
}

// The file is replaced whole: a reader polling it while it is rewritten
// never sees half a file, and no temporary file is left beside it.
func TestWriteFileIsAtomic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "switchover.prom")
	write := func(i int) {
		t.Helper()
		w := float64(i)
		if err := WriteFile(path, Run{Runbook: strings.Repeat("r", 2000), Cluster: "main", Finished: time.Unix(int64(i), 0), WindowMS: &w}); err != nil {
			t.Fatal(err)
		}
	}
	write(0)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var torn atomic.Int64
	reads := atomic.Int64{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			b, err := os.ReadFile(path)
			if err != nil {
				torn.Add(1) // the file must always be there
				continue
			}
			reads.Add(1)
			p := expfmt.NewTextParser(model.UTF8Validation)
			mfs, err := p.TextToMetricFamilies(bytes.NewReader(b))
			if err != nil || len(mfs) != 5 {
				torn.Add(1)
			}
		}
	}()
	for i := 1; i <= 200; i++ {
		write(i)
	}
	stop.Store(true)
	wg.Wait()
	if torn.Load() > 0 {
		t.Errorf("%d of %d reads saw a missing or partial file", torn.Load(), reads.Load())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("the directory holds %v, want only switchover.prom", names)
	}
}

func TestWriteFileErrorSaysWhere(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "no-such-dir", "switchover.prom")
	err := WriteFile(path, Run{Runbook: "example", Cluster: "c", Finished: time.Now()})
	if err == nil || !strings.Contains(err.Error(), "metrics file "+path+": no such file or directory") || !strings.Contains(err.Error(), filepath.Dir(path)) {
		t.Fatalf("err = %v, want it to name the metrics file", err)
	}
}
