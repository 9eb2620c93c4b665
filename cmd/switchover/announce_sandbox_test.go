package main

// --notify and --metrics-file on real switchovers of a sandbox, through
// the binary: the milestones a webhook receives, a webhook that never
// answers (the run neither waits for it nor fails), the metrics file, and
// the approval milestone of a run at a terminal.

import (
	"bytes"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/switchover/switchover/internal/metrics"
	"github.com/switchover/switchover/internal/notify"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/internal/testbin"
	"github.com/switchover/switchover/runbook/journal"
)

// switchoverLimit bounds one switchover of the sandbox through the binary.
const switchoverLimit = 3 * time.Minute

// switched is one switchover through the binary: how it ended, its
// journal, and how long the process lived.
type switched struct {
	r        testbin.Result
	id       string
	evs      []journal.Event
	finished journal.Event
	wall     time.Duration
}

func switchover(t *testing.T, dir, jd string, args ...string) switched {
	t.Helper()
	start := time.Now()
	r := testbin.Run(t, switchoverLimit, dir, append([]string{"run", "postgres-streaming-switchover", "--yes", "--journal-dir", jd}, args...)...)
	s := switched{r: r, wall: time.Since(start)}
	if r.Code != 0 {
		t.Fatalf("switchover %v: %s", args, r)
	}
	s.id = runIDIn(t, r)
	evs, err := journal.ReadJournal(jd, s.id)
	if err != nil {
		t.Fatal(err)
	}
	s.evs = evs
	for _, e := range evs {
		if e.Type == journal.EventRunFinished {
			s.finished = e
		}
	}
	if s.finished.Canary == nil || s.finished.Canary.WindowMS == nil || s.finished.Canary.Lost == nil || s.finished.DurationMS == nil {
		t.Fatalf("run %s: run.finished has no canary figures or duration: %+v", s.id, s.finished)
	}
	return s
}

func (s switched) window() float64   { return *s.finished.Canary.WindowMS }
func (s switched) duration() float64 { return float64(*s.finished.DurationMS) }

// gapAfter is the time from the first event matching ok to the next
// event of the run: how long the run stood still there.
func (s switched) gapAfter(t *testing.T, what string, ok func(journal.Event) bool) time.Duration {
	t.Helper()
	for i, e := range s.evs[:len(s.evs)-1] {
		if ok(e) {
			return s.evs[i+1].Time.Sub(e.Time)
		}
	}
	t.Fatalf("run %s: no %s in the journal", s.id, what)
	return 0
}

// assertNoWebhookSecret fails if any of texts shows the webhook's secret.
func assertNoWebhookSecret(t *testing.T, texts map[string]string) {
	t.Helper()
	for what, s := range texts {
		if strings.Contains(s, "S3cr3tT0ken") || strings.Contains(s, "T0AAAAAAA") {
			t.Errorf("%s shows the webhook's secret:\n%s", what, s)
		}
	}
}

func TestNotifyAndMetricsOfASandboxSwitchover(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	dir, jd := t.TempDir(), t.TempDir()
	inv := sb.Inventory()
	hook := &webhook{}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	mf := filepath.Join(dir, "switchover.prom")

	// 1. Scripted, told to a webhook, figures to a metrics file: pg1 → pg2.
	told := switchover(t, dir, jd, "-i", inv, "--notify", srv.URL+webhookSecret, "--metrics-file", mf)
	got := hook.messages()
	want := "run.started, point_of_no_return promote, run.finished"
	if strings.Join(milestonesOf(got), ", ") != want {
		t.Fatalf("the webhook received %v, want %s", milestonesOf(got), want)
	}
	for _, m := range got {
		if m.RunID != told.id || m.Cluster != "sandbox" || m.Runbook != "postgres-streaming-switchover" {
			t.Errorf("%s: run %q on %q of %q, want run %s on sandbox", m.Event, m.RunID, m.Cluster, m.Runbook, told.id)
		}
	}
	end := got[len(got)-1]
	if end.Outcome != "done" || end.ExitCode == nil || *end.ExitCode != 0 || end.Canary == nil || end.Canary.Lost == nil || *end.Canary.Lost != 0 ||
		end.Canary.WindowMS == nil || *end.Canary.WindowMS != told.window() || !strings.Contains(end.Summary, "0 lost") {
		t.Errorf("run.finished: %+v; want done, exit 0, the run's window %v ms, 0 lost", end, told.window())
	}
	t.Logf("milestones received: %s", strings.Join(milestonesOf(got), ", "))
	t.Logf("run.finished text: %s", end.Text)

	b, err := os.ReadFile(mf)
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("the metrics file does not parse: %v\n%s", err, b)
	}
	gauge := func(name string) float64 {
		t.Helper()
		mf, ok := mfs[name]
		if !ok || len(mf.Metric) != 1 {
			t.Fatalf("metrics file: no single %s:\n%s", name, b)
		}
		labels := map[string]string{}
		for _, l := range mf.Metric[0].Label {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["runbook"] != "postgres-streaming-switchover" || labels["cluster"] != "sandbox" || mf.GetType() != dto.MetricType_GAUGE {
			t.Errorf("%s: %s with labels %v", name, mf.GetType(), labels)
		}
		return mf.Metric[0].Gauge.GetValue()
	}
	if v := gauge(metrics.NameClientWindow); math.Abs(v-told.window()/1000) > 1e-9 {
		t.Errorf("client window %v s, want the run's %v ms", v, told.window())
	}
	if v := gauge(metrics.NameLostCommits); v != 0 {
		t.Errorf("lost commits %v, want 0", v)
	}
	if v := gauge(metrics.NameSuccess); v != 1 {
		t.Errorf("success %v, want 1", v)
	}
	if v := gauge(metrics.NameDuration); v*1000 < told.duration()-1 || v*1000 > told.duration()+1 {
		t.Errorf("duration %v s, want the run's %v ms", v, told.duration())
	}
	t.Logf("metrics file:\n%s", b)

	// 2. The same switchover back, told to nobody: the baseline.
	plain := switchover(t, dir, jd, "-i", inv, "--var", "primary=pg2", "--var", "candidate=pg1")

	// 3. Told to a webhook that never answers: the run does not wait for
	// it, succeeds, and says the messages were not delivered.
	var hits atomic.Int32
	hang := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer hanging.Close()
	defer close(hang) // before Close, which waits for the handlers
	hung := switchover(t, dir, jd, "-i", inv, "--var", "primary=pg1", "--var", "candidate=pg2", "--notify", hanging.URL+webhookSecret)

	t.Logf("canary window: %.1f ms told to nobody, %.1f ms told to a webhook that never answers (%.1f ms told to one that answers)", plain.window(), hung.window(), told.window())
	t.Logf("run duration: %.0f ms told to nobody, %.0f ms told to the hanging webhook; process %s and %s",
		plain.duration(), hung.duration(), plain.wall.Round(time.Millisecond), hung.wall.Round(time.Millisecond))
	if *hung.finished.Canary.Lost != 0 {
		t.Errorf("%d commits lost", *hung.finished.Canary.Lost)
	}
	// Clients are held from the pause to the resume, and the point of no
	// return (promote) is inside that: a post on the path would hold them
	// for its timeout at least.
	if hung.window() >= float64(notify.DefaultTimeout.Milliseconds()) {
		t.Errorf("the canary's window is %.1f ms with a hanging webhook (%.1f ms without): the posts held the clients", hung.window(), plain.window())
	}
	// The run did not stand still at a milestone for the webhook: a post
	// on the path would stop it there for a timeout (three, with retries).
	for what, ok := range map[string]func(journal.Event) bool{
		"run.started": func(e journal.Event) bool { return e.Type == journal.EventRunStarted },
		"promote running": func(e journal.Event) bool {
			return e.Type == journal.EventStep && e.Step == "promote" && e.State == journal.StateRunning
		},
	} {
		if gap := hung.gapAfter(t, what, ok); gap >= notify.DefaultTimeout {
			t.Errorf("the run stood still %s after %s (the post timeout is %s)", gap, what, notify.DefaultTimeout)
		}
	}
	// Posted on the path, run.started (3 attempts) and the point of no
	// return would add 4 timeouts to the run; off it, none.
	if extra := hung.duration() - plain.duration(); extra >= float64((2 * notify.DefaultTimeout).Milliseconds()) {
		t.Errorf("the run took %.0f ms longer with a hanging webhook", extra)
	}
	// The process waits for the webhook only at its end, and boundedly.
	if over, bound := (hung.wall-time.Duration(hung.duration())*time.Millisecond)-(plain.wall-time.Duration(plain.duration())*time.Millisecond), notify.DefaultFlush+3*time.Second; over > bound {
		t.Errorf("the process outlived its run by %s more than without a webhook; the flush is bounded by %s", over, notify.DefaultFlush)
	}
	if hits.Load() == 0 {
		t.Error("the hanging webhook was never posted to")
	}
	endpoint := hanging.URL
	if !strings.Contains(hung.r.Stderr, "warning: notify "+endpoint+": ") || !strings.Contains(hung.r.Stderr, "not delivered") {
		t.Errorf("stderr does not say the messages were not delivered:\n%s", hung.r.Stderr)
	}
	if last := hung.evs[len(hung.evs)-1]; last.Type != journal.EventNote || !strings.Contains(last.Message, "notify "+endpoint) {
		t.Errorf("the journal's last event is %s %q, want a note of the undelivered messages", last.Type, last.Message)
	}
	t.Logf("reported: %s", strings.TrimSpace(hung.r.Stderr))
	raw1, _ := os.ReadFile(journal.JournalPath(jd, told.id))
	raw3, _ := os.ReadFile(journal.JournalPath(jd, hung.id))
	assertNoWebhookSecret(t, map[string]string{"output": told.r.Output() + hung.r.Output(), "journals": string(raw1) + string(raw3), "metrics file": string(b)})

	// 4. At a terminal, the run stops to ask once, before its first
	// action: the webhook hears it is waiting while the prompt shows.
	at := &webhook{}
	atSrv := httptest.NewServer(at)
	defer atSrv.Close()
	_, keys, scr, done := interactiveAt(t, 160, []string{"NO_COLOR=1"}, "run", "postgres-streaming-switchover", "-i", inv, "--journal-dir", jd,
		"--var", "primary=pg2", "--var", "candidate=pg1", "--notify", atSrv.URL+webhookSecret)
	scr.waitFor(t, "proceed with step pause-pooler?", time.Minute)
	deadline := time.Now().Add(10 * time.Second)
	for len(at.messages()) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if w := milestonesOf(at.messages()); fmt.Sprint(w) != "[run.started approval.waiting pause-pooler]" {
		t.Fatalf("while the prompt shows, the webhook has %v; want run.started, approval.waiting pause-pooler", w)
	}
	keys("\r")
	scr.waitFor(t, "type the cluster name (sandbox) to confirm", 10*time.Second)
	keys("sandbox\r")
	if code := exitOf(t, done, 2*time.Minute, scr); code != 0 {
		t.Fatalf("interactive run: exit %d; the terminal shows:\n%s", code, scr.text())
	}
	gotAt := at.messages()
	if w := strings.Join(milestonesOf(gotAt), ", "); w != "run.started, approval.waiting pause-pooler, point_of_no_return promote, run.finished" {
		t.Fatalf("the webhook received %s", w)
	}
	for _, m := range gotAt[1:] {
		if m.RunID != gotAt[0].RunID || m.RunID == "" {
			t.Errorf("%s: run %q, want %q", m.Event, m.RunID, gotAt[0].RunID)
		}
	}
	t.Logf("at a terminal, milestones received: %s", strings.Join(milestonesOf(gotAt), ", "))
}
