// Package patronitest is a fake of Patroni's REST API for tests: /cluster,
// /config (GET and PATCH), /switchover and /restart, answering with the JSON shapes
// Patroni 3 uses, with basic auth when asked.
package patronitest

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/patroni"
)

// Member is one member as the fake lists it in /cluster.
type Member struct {
	Name     string
	Role     patroni.Role
	State    patroni.MemberState
	Port     int
	Timeline int64
	Lag      any // a number, "unknown", or nil for none (the leader)
	Tags     map[string]any
}

// IsLeader reports whether the member holds the leader lock.
func (m Member) IsLeader() bool { return m.Role.IsLeader() }

// Fake is a Patroni cluster's API. Lock Mu to change it while it serves.
type Fake struct {
	Mu      sync.Mutex
	Members []Member
	Config  map[string]any // the dynamic configuration; "pause" lives here
	// Username and Password, when set, are required as basic auth.
	Username, Password string
	// RefuseStatus and RefuseReason make POST /switchover answer with them.
	RefuseStatus int
	RefuseReason string
	// SettleAfter is how many GET /cluster after a switchover request show
	// it in progress (no leader) before the candidate leads; -1: never.
	SettleAfter int
	// AnswerAfter is how long POST /switchover takes to answer after it
	// started the switchover (Patroni answers once its own poll of the DCS
	// sees the new leader); the fake serves other requests meanwhile.
	AnswerAfter time.Duration
	// Instead, when set, is the member a switchover ends with as the
	// leader, whatever the candidate ("Switched over to X instead of Y").
	Instead string

	// Self is the member whose api_url is the fake's own url: POST /restart
	// restarts it. RestartStatus and RestartReason make it refuse instead.
	Self          string
	RestartStatus int
	RestartReason string
	// RestartPolls is how many GET /cluster after a restart show Self
	// "starting" before it runs again; -1: never.
	RestartPolls int

	Requests    []string // "METHOD /path", in order
	Restarts    []string // the body of each POST /restart
	AuthSeen    []string // the basic auth user of each request, "" for none
	Switchovers []map[string]string

	pending map[string]string // the switchover in progress
	restart int               // GET /cluster left before Self runs again; 0: none pending
	polls   int
	server  *httptest.Server
	// members are the APIs ServeEachMember started, by member name.
	members map[string]*httptest.Server
	// RestartedMembers names the member each POST /restart went to, in
	// order, when ServeEachMember gave every member an API of its own.
	RestartedMembers []string
	// MemberRequests are "MEMBER METHOD /path" for each request a member's
	// own API (ServeEachMember) took, in order.
	MemberRequests []string
}

// New starts a fake with a leader pg1 and replicas pg2 and pg3, not paused,
// and stops it when the test ends.
func New(t testing.TB) *Fake {
	f := &Fake{
		Members: []Member{
			{Name: "pg1", Role: patroni.RoleLeader, State: patroni.StateRunning, Port: 5432, Timeline: 3},
			{Name: "pg2", Role: patroni.RoleReplica, State: patroni.StateStreaming, Port: 5433, Timeline: 3, Lag: 0},
			{Name: "pg3", Role: patroni.RoleSyncStandby, State: patroni.StateStreaming, Port: 5434, Timeline: 3, Lag: 2048},
		},
		Config: map[string]any{
			"ttl": 30, "loop_wait": 10, "retry_timeout": 10,
			"maximum_lag_on_failover": 1048576,
			"postgresql":              map[string]any{"use_pg_rewind": true, "parameters": map[string]any{"max_connections": 100}},
		},
	}
	f.server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.server.Close)
	return f
}

// NewTLS is New serving HTTPS with a certificate of its own, for 127.0.0.1;
// CertPEM is that certificate, for a client's CA file.
func NewTLS(t testing.TB) (f *Fake, certPEM []byte) {
	f = New(t)
	f.server.Close()
	f.server = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.server.Close)
	cert := f.server.Certificate()
	return f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
}

// URL is the API's base url.
func (f *Fake) URL() string { return f.server.URL }

// Count returns how many requests "METHOD /path" the fake answered.
func (f *Fake) Count(req string) int {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	n := 0
	for _, r := range f.Requests {
		if r == req {
			n++
		}
	}
	return n
}

func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	user, pass, _ := r.BasicAuth()
	f.Requests = append(f.Requests, r.Method+" "+r.URL.Path)
	f.AuthSeen = append(f.AuthSeen, user)
	if f.Username != "" && (user != f.Username || pass != f.Password) {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, "no auth header received")
		return
	}
	switch r.Method + " " + r.URL.Path {
	case "GET /cluster":
		f.advance()
		writeJSON(w, f.cluster())
	case "GET /config":
		writeJSON(w, f.Config)
	case "PATCH /config":
		var patch map[string]any
		if err := json.NewDecoder(r.Body).Decode(&patch); err != nil {
			http.Error(w, "invalid json", http.StatusBadRequest)
			return
		}
		for k, v := range patch {
			if v == nil {
				delete(f.Config, k)
			} else {
				f.Config[k] = v
			}
		}
		writeJSON(w, f.Config)
	case "POST /switchover":
		var req map[string]string
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, "invalid json", http.StatusBadRequest)
			return
		}
		f.Switchovers = append(f.Switchovers, req)
		if f.RefuseStatus != 0 {
			w.WriteHeader(f.RefuseStatus)
			io.WriteString(w, f.RefuseReason)
			return
		}
		f.pending, f.polls = req, 0
		for i := range f.Members {
			if f.Members[i].Name == req["leader"] {
				f.Members[i].Role, f.Members[i].State = patroni.RoleReplica, patroni.StateStopping
			}
		}
		if d := f.AnswerAfter; d > 0 {
			f.Mu.Unlock()
			select {
			case <-time.After(d):
			case <-r.Context().Done():
			}
			f.Mu.Lock()
		}
		io.WriteString(w, fmt.Sprintf("Successfully switched over to %q", req["candidate"]))
	case "POST /restart":
		b, _ := io.ReadAll(r.Body)
		f.Restarts = append(f.Restarts, string(b))
		if f.RestartStatus != 0 {
			w.WriteHeader(f.RestartStatus)
			io.WriteString(w, f.RestartReason)
			return
		}
		for i := range f.Members {
			if f.Members[i].Name == f.Self {
				f.Members[i].State = patroni.StateStarting
			}
		}
		f.restart = f.RestartPolls + 1
		io.WriteString(w, "restarted successfully")
	default:
		http.NotFound(w, r)
	}
}

// advance moves a switchover in progress on by one poll.
func (f *Fake) advance() {
	if f.restart > 0 && f.RestartPolls >= 0 {
		if f.restart--; f.restart == 0 {
			for i := range f.Members {
				if m := &f.Members[i]; m.Name == f.Self {
					m.State = patroni.StateRunning
					if !m.IsLeader() {
						m.State = patroni.StateStreaming
					}
				}
			}
		}
	}
	if f.pending == nil {
		return
	}
	f.polls++
	if f.SettleAfter < 0 || f.polls <= f.SettleAfter {
		return
	}
	winner := f.pending["candidate"]
	if f.Instead != "" {
		winner = f.Instead
	}
	for i := range f.Members {
		m := &f.Members[i]
		m.Timeline++
		switch m.Name {
		case winner:
			m.Role, m.State, m.Lag = patroni.RoleLeader, patroni.StateRunning, nil
		case f.pending["leader"]:
			m.Role, m.State, m.Lag = patroni.RoleReplica, patroni.StateStreaming, 0
		}
	}
	f.pending = nil
}

func (f *Fake) cluster() map[string]any {
	var members []map[string]any
	for _, m := range f.Members {
		x := map[string]any{
			"name": m.Name, "role": m.Role, "state": m.State,
			"api_url": fmt.Sprintf("http://127.0.0.1:%d/patroni", 8000+m.Port-5432),
			"host":    "127.0.0.1", "port": m.Port, "timeline": m.Timeline,
		}
		if m.Name == f.Self {
			x["api_url"] = f.server.URL + "/patroni"
		}
		if s, ok := f.members[m.Name]; ok {
			x["api_url"] = s.URL + "/patroni"
		}
		if m.Lag != nil {
			x["lag"] = m.Lag
		}
		if m.Tags != nil {
			x["tags"] = m.Tags
		}
		members = append(members, x)
	}
	out := map[string]any{"members": members, "scope": "demo"}
	if p, _ := f.Config["pause"].(bool); p {
		out["pause"] = true
	}
	return out
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
