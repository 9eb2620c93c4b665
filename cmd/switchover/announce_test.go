package main

// --notify and --metrics-file without a database: runbooks of shell
// steps, run in-process, posting to a local webhook, a closed port, or a
// file that cannot be written.

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/switchover/switchover/internal/metrics"
	"github.com/switchover/switchover/internal/notify"
	"github.com/switchover/switchover/runbook"
	"github.com/switchover/switchover/runbook/journal"
)

// webhookSecret is the secret part of the test webhooks' URL: it must
// appear in no output, journal, report or metrics file.
const webhookSecret = "/hooks/T0AAAAAAA/B0BBBBBBB/wEbh00kS3cr3tT0ken"

// ponrRunbook has a destructive step that is the point of no return.
const ponrRunbook = `name: announce-test
vars:
  dir: /nonexistent
steps:
  - name: prepare
    action:
      exec: {command: "echo one >> ${dir}/log"}
  - name: cut-over
    destructive: true
    point_of_no_return: true
    action:
      exec: {command: "echo two >> ${dir}/log"}
  - name: tidy
    action:
      exec: {command: "echo three >> ${dir}/log"}
`

// webhook records the messages posted to it, in order of arrival.
type webhook struct {
	mu  sync.Mutex
	got []notify.Message
	at  []time.Time
}

func (w *webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	var m notify.Message
	if r.URL.Path != webhookSecret || json.NewDecoder(r.Body).Decode(&m) != nil {
		http.Error(rw, "no such hook", http.StatusNotFound)
		return
	}
	w.mu.Lock()
	w.got, w.at = append(w.got, m), append(w.at, time.Now())
	w.mu.Unlock()
	rw.Write([]byte("ok"))
}

func (w *webhook) messages() []notify.Message {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]notify.Message(nil), w.got...)
}

// milestonesOf is each message as "event step", for comparing orders.
func milestonesOf(ms []notify.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = strings.TrimSpace(m.Event + " " + m.Step)
	}
	return out
}

// yesOperator approves whatever it is asked, as a person at a terminal.
type yesOperator struct{}

func (yesOperator) Ask(context.Context, runbook.Question) (runbook.Answer, error) {
	return runbook.Answer{Yes: true}, nil
}

// A run at a terminal: started, waiting for approval, point of no return,
// finished, in this order, each with the run's id; the metrics file says
// the run succeeded.
func TestAnnounceMilestonesOfARun(t *testing.T) {
	t.Parallel()
	hook := &webhook{}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	dir, jd := t.TempDir(), t.TempDir()
	file := filepath.Join(dir, "announce.yaml")
	writeFile(t, file, ponrRunbook)
	mf := filepath.Join(dir, "switchover.prom")

	var out, errb bytes.Buffer
	io := &streams{in: strings.NewReader(""), out: &out, err: &errb}
	opts := &runOpts{planInput: planInput{file: file, vars: []string{"dir=" + dir}}, logFormat: "human", g: &globalOpts{journalDir: jd},
		ann: announceOpts{notify: srv.URL + webhookSecret, metricsFile: mf}}
	o, _, err := engineOptions(context.Background(), io, opts)
	if err != nil {
		t.Fatal(err)
	}
	o.Operator = yesOperator{}
	p, err := loadPlan(opts.planInput)
	if err != nil {
		t.Fatal(err)
	}
	ann := opts.ann.start(io, &o, jd)
	res, err := runbook.Run(context.Background(), p, o)
	ann.finish(res, err)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}

	got := hook.messages()
	want := []string{"run.started", "approval.waiting cut-over", "point_of_no_return cut-over", "run.finished"}
	if strings.Join(milestonesOf(got), ", ") != strings.Join(want, ", ") {
		t.Fatalf("milestones %v, want %v", milestonesOf(got), want)
	}
	for _, m := range got {
		if m.RunID != res.RunID || m.Runbook != "announce-test" || m.Text == "" || m.Time.IsZero() {
			t.Errorf("%s: run %q, runbook %q, text %q, time %s; want run %s of announce-test", m.Event, m.RunID, m.Runbook, m.Text, m.Time, res.RunID)
		}
	}
	end := got[3]
	if end.Outcome != "done" || end.ExitCode == nil || *end.ExitCode != 0 || !strings.HasPrefix(end.Summary, "done in ") || end.DurationMS == nil {
		t.Errorf("run.finished: outcome %q, exit %v, summary %q, duration %v", end.Outcome, end.ExitCode, end.Summary, end.DurationMS)
	}
	if got[1].Question != "approve" {
		t.Errorf("approval.waiting asks %q, want approve", got[1].Question)
	}
	if errb.Len() > 0 {
		t.Errorf("stderr: %q, want nothing when every post and the file succeed", errb.String())
	}

	b, err := os.ReadFile(mf)
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("metrics file: %v\n%s", err, b)
	}
	if v := mfs[metrics.NameSuccess].Metric[0].Gauge.GetValue(); v != 1 {
		t.Errorf("success %v, want 1", v)
	}
	if _, ok := mfs[metrics.NameClientWindow]; ok {
		t.Errorf("a run without a canary has a client window:\n%s", b)
	}
}

// deadEndpoint is a webhook URL on a loopback port nothing listens on.
func deadEndpoint(t *testing.T) (url, endpoint string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + webhookSecret, "http://" + addr
}

// A dead webhook and an unwritable metrics file change nothing of the
// run: exit 0, the steps done; each failure is reported (a warning line,
// or JSON events) and noted in the journal, without the URL's secret.
func TestAnnounceFailuresNeverFailTheRun(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"human", "json"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			dir, jd := t.TempDir(), t.TempDir()
			file := filepath.Join(dir, "announce.yaml")
			writeFile(t, file, ponrRunbook)
			hookURL, endpoint := deadEndpoint(t)
			mf := filepath.Join(dir, "no-such-dir", "switchover.prom")
			start := time.Now()
			code, out, errOut := executeT(t, "run", file, "--var", "dir="+dir, "--yes", "--log-format", format,
				"--journal-dir", jd, "--notify", hookURL, "--metrics-file", mf)
			took := time.Since(start)
			if code != exitOK {
				t.Fatalf("exit %d, want 0\n%s%s", code, out, errOut)
			}
			assertLog(t, filepath.Join(dir, "log"), "one\ntwo\nthree\n")
			if took > notify.DefaultFlush+5*time.Second {
				t.Errorf("the run took %s with a dead webhook; the flush is bounded by %s", took, notify.DefaultFlush)
			}
			runs, err := journal.ListRuns(jd)
			if err != nil || len(runs) != 1 {
				t.Fatalf("runs %v, %v", runs, err)
			}
			evs, err := journal.ReadJournal(jd, runs[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			last := evs[len(evs)-1]
			if last.Type != journal.EventNote || !strings.Contains(last.Message, "notify "+endpoint+": 3 of 3 messages not delivered") ||
				!strings.Contains(last.Message, "metrics file "+mf) || last.Seq != evs[len(evs)-2].Seq+1 {
				t.Errorf("the journal's last event: %+v; want a note of both failures", last)
			}
			if runs[0].Status != "done" {
				t.Errorf("status %q after the note, want done", runs[0].Status)
			}
			_, report, _ := executeT(t, "report", runs[0].ID, "--journal-dir", jd)
			if !strings.Contains(report, "messages not delivered") {
				t.Errorf("the report does not say what was not delivered:\n%s", report)
			}
			raw, _ := os.ReadFile(journal.JournalPath(jd, runs[0].ID))
			for what, s := range map[string]string{"stdout": out, "stderr": errOut, "journal": string(raw), "report": report} {
				if strings.Contains(s, "S3cr3tT0ken") || strings.Contains(s, "T0AAAAAAA") {
					t.Errorf("%s shows the webhook's secret:\n%s", what, s)
				}
			}
			if format == "human" {
				for _, want := range []string{"warning: notify " + endpoint + ": 3 of 3 messages not delivered: run.started: ", "connection refused", "warning: metrics file " + mf} {
					if !strings.Contains(errOut, want) {
						t.Errorf("stderr has no %q:\n%s", want, errOut)
					}
				}
				return
			}
			if errOut != "" {
				t.Errorf("stderr %q: with --log-format json failures are JSON events", errOut)
			}
			var failed []string
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				var ev map[string]any
				if err := json.Unmarshal([]byte(line), &ev); err != nil {
					t.Fatalf("not JSON: %q", line)
				}
				switch ev["event"] {
				case "notify.failed":
					if ev["endpoint"] != endpoint || ev["run_id"] != runs[0].ID || ev["error"] == "" || ev["attempts"] == nil {
						t.Errorf("notify.failed: %s", line)
					}
					failed = append(failed, ev["milestone"].(string))
				case "metrics.failed":
					if ev["path"] != mf || ev["run_id"] != runs[0].ID {
						t.Errorf("metrics.failed: %s", line)
					}
					failed = append(failed, "metrics")
				}
			}
			// The metrics file is written first, then the last post flushed.
			if want := "metrics run.started point_of_no_return run.finished"; strings.Join(failed, " ") != want {
				t.Errorf("failure events %v, want %s", failed, want)
			}
		})
	}
}

func TestAnnounceFlags(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"run", "resume"} {
		code, out, _ := executeT(t, cmd, "--help")
		if code != 0 || !strings.Contains(out, "--notify URL") || !strings.Contains(out, "--metrics-file FILE") {
			t.Errorf("%s --help (exit %d) does not show --notify URL and --metrics-file FILE:\n%s", cmd, code, out)
		}
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "announce.yaml")
	writeFile(t, file, ponrRunbook)
	for _, bad := range []string{"ftp://hooks.example.com" + webhookSecret, "hooks.example.com" + webhookSecret, "https://" + webhookSecret} {
		code, out, errOut := executeT(t, "run", file, "--var", "dir="+dir, "--yes", "--journal-dir", t.TempDir(), "--notify", bad)
		if code != exitUsage || !strings.Contains(errOut, "--notify: ") {
			t.Errorf("--notify with a bad URL: exit %d, %q; want exit 2 naming --notify", code, errOut)
		}
		if strings.Contains(out+errOut, "S3cr3tT0ken") {
			t.Errorf("the refusal shows the URL: %s", errOut)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "log")); err == nil {
		t.Error("a run refused for its --notify URL ran a step")
	}
}
