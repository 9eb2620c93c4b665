package notify

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// secretPath is the part of a webhook URL that must never be shown.
const secretPath = "/services/T0AAAAAAA/B0BBBBBBB/s3cr3tT0kenXYZxyz123456"

// recorder is a webhook that keeps what it was posted.
type recorder struct {
	mu   sync.Mutex
	got  []Message
	ct   []string
	path []string
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var m Message
	if err := json.NewDecoder(req.Body).Decode(&m); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.got = append(r.got, m)
	r.ct = append(r.ct, req.Header.Get("Content-Type"))
	r.path = append(r.path, req.URL.Path)
	r.mu.Unlock()
	io.WriteString(w, "ok")
}

func (r *recorder) messages() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Message(nil), r.got...)
}

// milestones are a run's four, in order.
func milestones() []Message {
	code, d := 0, int64(4200)
	lost, window := int64(0), 273.2
	base := Message{RunID: "20261121T102530Z-3f2a9c", Runbook: "postgres-streaming-switchover", Cluster: "main"}
	ms := []Message{base, base, base, base}
	ms[0].Event, ms[0].StartedBy = EventStarted, "alice@bastion"
	ms[1].Event, ms[1].Step, ms[1].Question = EventApproval, "pause-pooler", "approve"
	ms[2].Event, ms[2].Step = EventPointOfNoReturn, "promote"
	ms[3].Event, ms[3].Outcome, ms[3].ExitCode, ms[3].DurationMS = EventFinished, "done", &code, &d
	ms[3].Summary = "done in 4.2s: pg1 → pg2, clients held 273.2 ms, 0 lost"
	ms[3].Canary = &Canary{Lost: &lost, WindowMS: &window}
	return ms
}

func newT(t *testing.T, rawURL string, o Options) *Notifier {
	t.Helper()
	n, err := New(rawURL, o)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// postAll posts ms and fails the test if posting waited: Post only queues.
func postAll(t *testing.T, n *Notifier, ms []Message) {
	t.Helper()
	start := time.Now()
	for _, m := range ms {
		n.Post(m)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("posting %d messages took %s: Post must return at once", len(ms), d)
	}
}

func TestMilestonesArriveInOrder(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	n := newT(t, srv.URL+secretPath, Options{})
	want := milestones()
	postAll(t, n, want)
	rep := n.Close(5 * time.Second)
	if len(rep.Failed) != 0 || rep.Sent != len(want) {
		t.Fatalf("sent %d, failed %v; want %d sent", rep.Sent, rep.Failed, len(want))
	}
	if rep.Endpoint != srv.URL {
		t.Errorf("endpoint %q, want %q", rep.Endpoint, srv.URL)
	}
	got := rec.messages()
	for i, m := range got {
		if m.Event != want[i].Event || m.RunID != want[i].RunID || m.Step != want[i].Step {
			t.Errorf("message %d: %s %s %s, want %s %s %s", i, m.Event, m.RunID, m.Step, want[i].Event, want[i].RunID, want[i].Step)
		}
		if m.Text == "" || strings.Contains(m.Text, "\n") || m.Time.IsZero() {
			t.Errorf("message %d: text %q, time %s: want one line and a time", i, m.Text, m.Time)
		}
		if rec.ct[i] != "application/json" || rec.path[i] != secretPath {
			t.Errorf("message %d: content type %q, path %q", i, rec.ct[i], rec.path[i])
		}
	}
	end := got[len(got)-1]
	if end.ExitCode == nil || *end.ExitCode != 0 || end.Outcome != "done" || end.Canary == nil || *end.Canary.WindowMS != 273.2 {
		t.Errorf("run.finished: %+v", end)
	}
	if want := "switchover: postgres-streaming-switchover on main: done in 4.2s: pg1 → pg2, clients held 273.2 ms, 0 lost (run 20261121T102530Z-3f2a9c, exit 0)"; end.Text != want {
		t.Errorf("run.finished text:\n got %q\nwant %q", end.Text, want)
	}
}

// The payload's field names are what chat webhooks and scripts read.
func TestPayloadFieldNames(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(milestones()[3])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"text", "event", "run_id", "runbook", "cluster", "time", "outcome", "exit_code", "summary", "duration_ms", "canary"} {
		if _, ok := m[k]; !ok {
			t.Errorf("run.finished has no %q: %s", k, b)
		}
	}
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestDeadEndpoint(t *testing.T) {
	t.Parallel()
	addr := closedPort(t)
	n := newT(t, "http://"+addr+secretPath, Options{Timeout: 500 * time.Millisecond, Backoff: 10 * time.Millisecond})
	ms := milestones()
	postAll(t, n, ms)
	start := time.Now()
	rep := n.Close(3 * time.Second)
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("Close took %s; bounded by 3s and its grace", d)
	}
	if rep.Sent != 0 || len(rep.Failed) != len(ms) {
		t.Fatalf("sent %d, failed %v; want every message failed", rep.Sent, rep.Failed)
	}
	for i, f := range rep.Failed {
		if f.Event != ms[i].Event {
			t.Errorf("failure %d is %s, want %s", i, f.Event, ms[i].Event)
		}
		if !strings.Contains(f.Reason, "connection refused") {
			t.Errorf("failure %d: %q, want the refused connection", i, f.Reason)
		}
		assertNoSecret(t, f.String())
	}
	if rep.Failed[0].Attempts != 1+DefaultRetries {
		t.Errorf("first message: %d attempts, want %d", rep.Failed[0].Attempts, 1+DefaultRetries)
	}
	if rep.Failed[1].Attempts != 1 {
		t.Errorf("after a message failed every attempt the next gets one, got %d", rep.Failed[1].Attempts)
	}
	if rep.Endpoint != "http://"+addr {
		t.Errorf("endpoint %q, want scheme://host only", rep.Endpoint)
	}
}

// A webhook that never answers: posting returns at once, and Close gives
// up after its bound, reporting every message, none silently dropped.
func TestHangingEndpoint(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var mu sync.Mutex
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	const timeout, within = 200 * time.Millisecond, 700 * time.Millisecond
	n := newT(t, srv.URL+secretPath, Options{Timeout: timeout, Retries: 1, Backoff: 10 * time.Millisecond})
	ms := milestones()
	postAll(t, n, ms)
	start := time.Now()
	rep := n.Close(within)
	if d := time.Since(start); d > within+time.Second {
		t.Errorf("Close took %s, want at most %s and a short grace", d, within)
	}
	if rep.Sent != 0 || len(rep.Failed) != len(ms) {
		t.Fatalf("sent %d, failed %v; want all %d reported", rep.Sent, rep.Failed, len(ms))
	}
	if f := rep.Failed[0]; f.Event != EventStarted || f.Attempts != 2 || !strings.Contains(f.Reason, "no answer within 200ms") {
		t.Errorf("first failure: %+v, want run.started, 2 attempts, no answer within 200ms", f)
	}
	if f := rep.Failed[len(rep.Failed)-1]; f.Event != EventFinished || f.Attempts != 0 || f.Reason != "not posted: the flush at exit ran out of time" {
		t.Errorf("last failure: %+v, want run.finished never posted", f)
	}
	seen := map[string]bool{}
	for _, f := range rep.Failed {
		seen[f.Event] = true
		assertNoSecret(t, f.String())
	}
	for _, m := range ms {
		if !seen[m.Event] {
			t.Errorf("%s is not reported: %v", m.Event, rep.Failed)
		}
	}
}

func TestAnswersThatFail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		status    []int // one per request; the last repeats
		body      string
		wantSent  int
		wantHits  int
		wantInErr string
	}{
		{"500 then 200: retried", []int{500, 200}, "", 1, 2, ""},
		{"429 then 200: retried", []int{429, 200}, "", 1, 2, ""},
		{"404: not retried", []int{404}, "no_service", 0, 1, "answered 404 Not Found: no_service"},
		{"always 503", []int{503}, "down for maintenance", 0, 1 + DefaultRetries, "answered 503 Service Unavailable: down for maintenance"},
		{"302: no redirect followed", []int{302}, "", 0, 1, "answered 302 Found"},
		{"an answer that quotes the URL", []int{400}, "unknown hook " + secretPath, 0, 1, "unknown hook ********"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			hits := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				st := tt.status[min(hits, len(tt.status)-1)]
				hits++
				mu.Unlock()
				if st == 302 {
					w.Header().Set("Location", "http://example.invalid/")
				}
				w.WriteHeader(st)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			n := newT(t, srv.URL+secretPath, Options{Backoff: 5 * time.Millisecond})
			n.Post(milestones()[0])
			rep := n.Close(5 * time.Second)
			mu.Lock()
			defer mu.Unlock()
			if rep.Sent != tt.wantSent || hits != tt.wantHits {
				t.Errorf("sent %d after %d requests, want %d after %d (failed: %v)", rep.Sent, hits, tt.wantSent, tt.wantHits, rep.Failed)
			}
			if tt.wantInErr != "" {
				if len(rep.Failed) != 1 || !strings.Contains(rep.Failed[0].Reason, tt.wantInErr) {
					t.Errorf("failed %v, want one failure saying %q", rep.Failed, tt.wantInErr)
				}
			}
			for _, f := range rep.Failed {
				assertNoSecret(t, f.String())
			}
		})
	}
}

func TestBadURLsAreRefusedWithoutShowingThem(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		"ftp://hooks.example.com" + secretPath,
		"hooks.example.com" + secretPath,
		"https://" + secretPath,
		"http://[::1" + secretPath,
		"https://user:p4ssw0rd-secret@" + secretPath,
	} {
		_, err := New(raw, Options{})
		if err == nil {
			t.Errorf("New accepted a bad URL")
			continue
		}
		assertNoSecret(t, err.Error())
		if strings.Contains(err.Error(), "p4ssw0rd") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
	n := newT(t, "https://bot:p4ssw0rd-secret@hooks.example.com:8443"+secretPath+"?token=qu3rys3cr3t", Options{})
	defer n.Close(0)
	if got := n.Endpoint(); got != "https://hooks.example.com:8443" {
		t.Errorf("endpoint %q", got)
	}
	for _, s := range []string{"p4ssw0rd", "qu3rys3cr3t", "s3cr3t"} {
		if strings.Contains(n.Endpoint(), s) {
			t.Errorf("the endpoint %q shows %q", n.Endpoint(), s)
		}
	}
}

// A message that finds the queue full, or comes after Close, is reported.
func TestNothingSilentlyDropped(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	n := newT(t, srv.URL+secretPath, Options{Queue: 1, Timeout: time.Second, Retries: -1})
	for i := 0; i < 5; i++ {
		n.Post(Message{Event: fmt.Sprintf("e%d", i)})
	}
	rep := n.Close(100 * time.Millisecond)
	n.Post(Message{Event: "late"})
	if len(rep.Failed) != 5 {
		t.Fatalf("failed %v, want all 5 reported", rep.Failed)
	}
	again := n.Close(0)
	if last := again.Failed[len(again.Failed)-1]; last.Event != "late" || !strings.Contains(last.Reason, "closed") {
		t.Errorf("a message after Close: %+v", last)
	}
}

func assertNoSecret(t *testing.T, s string) {
	t.Helper()
	for _, part := range []string{secretPath, "s3cr3tT0kenXYZxyz123456", "T0AAAAAAA", "B0BBBBBBB"} {
		if strings.Contains(s, part) {
			t.Errorf("%q shows %q of the webhook URL", s, part)
		}
	}
	if u, err := url.Parse(s); err == nil && u.Path == secretPath {
		t.Errorf("%q is the webhook URL", s)
	}
}
