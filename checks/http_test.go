package checks

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// newBackend serves a few health-endpoint shapes on 127.0.0.1.
func newBackend(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/primary", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"role": "master", "state": "running"}`)
	})
	mux.HandleFunc("/replica", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"role": "replica",
		"state": "streaming"}`)
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/primary", http.StatusFound)
	})
	mux.HandleFunc("/empty", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("/big", func(w http.ResponseWriter, _ *http.Request) {
		// More than the 1 MiB read; the marker past it must not be seen.
		_, _ = io.WriteString(w, strings.Repeat("x", maxHTTPBody)+"MARKER")
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(testTimeout):
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestHTTPOKRun(t *testing.T) {
	t.Parallel()
	srv := newBackend(t)
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the rejected handshake is expected
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	closed := "http://" + closedPort(t) + "/"

	tests := []struct {
		name    string
		raw     map[string]any
		timeout time.Duration
		status  Status
		want    []string
		avoid   []string
	}{
		{name: "status 200 passes", raw: map[string]any{"url": srv.URL + "/primary"},
			status: Pass, want: []string{"answered 200 in "}},
		{name: "status mismatch fails with an excerpt", raw: map[string]any{"url": srv.URL + "/replica"},
			status: Fail, want: []string{"answered 503", `"role": "replica", "state": "streaming"`, "status 200"}},
		{name: "wanted non-200 status passes", raw: map[string]any{"url": srv.URL + "/replica", "status": "503"},
			status: Pass, want: []string{"answered 503"}},
		{name: "body matches", raw: map[string]any{"url": srv.URL + "/primary", "body": `"role":\s*"master"`},
			status: Pass, want: []string{"answered 200"}},
		{name: "body mismatch fails", raw: map[string]any{"url": srv.URL + "/primary", "body": `"role":\s*"replica"`},
			status: Fail, want: []string{"not matching", `: {"role": "master", "state": "running"}`, "and a body matching"}},
		{name: "empty body mismatch says empty", raw: map[string]any{"url": srv.URL + "/empty", "body": "."},
			status: Fail, want: []string{"with an empty body"}},
		{name: "body read stops at 1 MiB", raw: map[string]any{"url": srv.URL + "/big", "body": "MARKER"},
			status: Fail, want: []string{"not matching", "…"}},
		{name: "redirect is not followed", raw: map[string]any{"url": srv.URL + "/moved"},
			status: Fail, want: []string{"answered 302", "redirect to /primary"}},
		{name: "closed port fails", raw: map[string]any{"url": closed},
			status: Fail, want: []string{"connection refused"}},
		{name: "slow server is cut off by ctx", raw: map[string]any{"url": srv.URL + "/slow"}, timeout: 300 * time.Millisecond,
			status: Fail, want: []string{"no answer before the time limit"}},
		{name: "untrusted tls fails", raw: map[string]any{"url": tlsSrv.URL},
			status: Fail, want: []string{"x509: certificate signed by unknown authority"}},
		{name: "insecure skips tls verification", raw: map[string]any{"url": tlsSrv.URL, "insecure": "true"},
			status: Pass, want: []string{"answered 200"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := mustBuild(t, "http.ok", tc.raw)
			r := runTimed(t, c, nil, tc.timeout)
			assertResult(t, r, tc.status, tc.want, tc.avoid)
		})
	}
}

// forwardProxy is a minimal forward http proxy that records the requests it
// relays.
type forwardProxy struct {
	mu   sync.Mutex
	seen []string // absolute request urls
}

func (p *forwardProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.seen = append(p.seen, r.URL.String())
	p.mu.Unlock()
	if !r.URL.IsAbs() {
		http.Error(w, "not a proxy request", http.StatusBadRequest)
		return
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, r.URL.String(), nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Do(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	w.Header().Set("Via", "1.1 test-proxy")
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

func (p *forwardProxy) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.seen...)
}

func TestHTTPOKThroughProxy(t *testing.T) {
	t.Parallel()
	backend := newBackend(t)
	fp := &forwardProxy{}
	proxy := httptest.NewServer(fp)
	t.Cleanup(proxy.Close)

	target := backend.URL + "/primary"
	c := mustBuild(t, "http.ok", map[string]any{"url": target, "proxy": proxy.URL, "body": "master"})
	r := c.Run(testCtx(t, 0), nil)
	assertResult(t, r, Pass, []string{"via proxy " + proxy.URL, "answered 200"}, nil)
	if got := fp.requests(); len(got) != 1 || got[0] != target {
		t.Errorf("proxy relayed %q, want exactly [%q]", got, target)
	}

	// Without the proxy parameter the request goes direct.
	direct := mustBuild(t, "http.ok", map[string]any{"url": target})
	assertResult(t, direct.Run(testCtx(t, 0), nil), Pass, nil, []string{"via proxy"})
	if got := fp.requests(); len(got) != 1 {
		t.Errorf("a check without proxy went through the proxy: %q", got)
	}

	// A proxy that is down is a failure that names it.
	dead := "http://" + closedPort(t)
	viaDead := mustBuild(t, "http.ok", map[string]any{"url": target, "proxy": dead})
	assertResult(t, viaDead.Run(testCtx(t, 0), nil), Fail, []string{"via proxy " + dead, "connection refused"}, nil)
}

func TestHTTPOKNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		raw     map[string]any
		wantErr string
	}{
		{name: "bad body regexp", raw: map[string]any{"url": "http://127.0.0.1/", "body": "(unclosed"}, wantErr: "body"},
		{name: "not http", raw: map[string]any{"url": "ftp://127.0.0.1/"}, wantErr: "http"},
		{name: "no host", raw: map[string]any{"url": "http:///path"}, wantErr: "no host"},
		{name: "relative url", raw: map[string]any{"url": "/health"}, wantErr: "url"},
		{name: "bad proxy", raw: map[string]any{"url": "http://127.0.0.1/", "proxy": "127.0.0.1:3128"}, wantErr: "proxy"},
		{name: "status out of range", raw: map[string]any{"url": "http://127.0.0.1/", "status": "42"}, wantErr: "status"},
		{name: "good", raw: map[string]any{"url": "https://127.0.0.1/", "body": "^ok$", "proxy": "http://127.0.0.1:3128"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			buildExpecting(t, "http.ok", tc.raw, tc.wantErr)
		})
	}
}

func TestHTTPOKDescribe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw  map[string]any
		want string
	}{
		{map[string]any{"url": "http://127.0.0.1:8008/primary"}, "GET http://127.0.0.1:8008/primary returns 200"},
		{map[string]any{"url": "http://u:secret@127.0.0.1/", "status": "503", "body": "x", "proxy": "http://p:pw@127.0.0.1:3128"},
			`GET http://u:xxxxx@127.0.0.1/ returns 503 with a body matching "x" via proxy http://p:xxxxx@127.0.0.1:3128`},
	}
	for _, tc := range tests {
		got := mustBuild(t, "http.ok", tc.raw).Describe(nil)
		if got != tc.want {
			t.Errorf("describe = %q, want %q", got, tc.want)
		}
		if strings.Contains(got, "secret") || strings.Contains(got, "pw@") {
			t.Errorf("describe shows a password: %q", got)
		}
	}
}

func TestExcerpt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"", 10, ""},
		{"  a\n\tb  ", 10, "a b"},
		{"abcdefghij", 4, "abcd…"},
		{"ééé", 3, "é…"},
	}
	for _, tc := range tests {
		if got := excerpt([]byte(tc.in), tc.n); got != tc.want {
			t.Errorf("excerpt(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
