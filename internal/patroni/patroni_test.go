package patroni_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/patroni"
	"github.com/switchover/switchover/internal/patroni/patronitest"
)

// downURL is the url of an API that refuses connections.
func downURL(t *testing.T) string {
	s := httptest.NewServer(nil)
	u := s.URL
	s.Close()
	return u
}

func client(t *testing.T, m cluster.Manager) *patroni.Client {
	t.Helper()
	m.Kind = "patroni"
	c, err := patroni.New(&m)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPatroniClusterAndConfig(t *testing.T) {
	t.Parallel()
	f := patronitest.New(t)
	f.Members[1].Tags = map[string]any{"nofailover": true, "noloadbalance": "true"}
	f.Members[2].Lag = "unknown"
	c := client(t, cluster.Manager{URLs: []string{f.URL()}})
	st, err := c.Cluster(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Leaders(); len(got) != 1 || got[0].Name != "pg1" || got[0].Timeline != 3 {
		t.Errorf("leaders = %+v", got)
	}
	pg2, _ := st.Member("pg2")
	if !bool(pg2.Tags.NoFailover) || !bool(pg2.Tags.NoLoadBalance) || !pg2.Lag.Known || pg2.Port != 5433 {
		t.Errorf("pg2 = %+v", pg2)
	}
	if pg3, _ := st.Member("pg3"); pg3.Lag.Known || pg3.Role != patroni.RoleSyncStandby {
		t.Errorf("pg3 = %+v", pg3)
	}
	cfg, err := c.Config(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Pause || cfg.MaximumLagOnFailover != 1048576 {
		t.Errorf("config = %+v", cfg)
	}
}

func TestPatroniBasicAuthAndPasswordMasked(t *testing.T) {
	t.Parallel()
	f := patronitest.New(t)
	f.Username, f.Password = "admin", "s3cret-pw"
	c := client(t, cluster.Manager{URLs: []string{f.URL()}, Username: "admin", Password: "s3cret-pw"})
	if _, err := c.Cluster(context.Background()); err != nil {
		t.Fatalf("with auth: %v", err)
	}
	if f.AuthSeen[0] != "admin" {
		t.Errorf("auth user seen = %q", f.AuthSeen[0])
	}

	// A wrong password, a password in a url that is down, and one in a
	// url that answers 401: none shows in an error.
	bad := client(t, cluster.Manager{
		URLs:     []string{strings.Replace(downURL(t), "http://", "http://admin:url-pw-9@", 1), f.URL()},
		Username: "admin", Password: "wrong-pw-7"})
	for name, call := range map[string]func() error{
		"read":  func() error { _, err := bad.Cluster(context.Background()); return err },
		"write": func() error { _, err := bad.Pause(context.Background(), true); return err },
		"switchover": func() error {
			_, err := bad.Switchover(context.Background(), "pg1", "pg2", nil)
			return err
		},
	} {
		err := call()
		if err == nil {
			t.Fatalf("%s: want an error", name)
		}
		for _, pw := range []string{"wrong-pw-7", "url-pw-9", "s3cret-pw"} {
			if strings.Contains(err.Error(), pw) {
				t.Errorf("%s: error shows a password: %v", name, err)
			}
		}
		if !strings.Contains(err.Error(), "401") {
			t.Errorf("%s: error does not say 401: %v", name, err)
		}
	}
}

func TestPatroniFirstURLDownSecondAnswers(t *testing.T) {
	t.Parallel()
	f := patronitest.New(t)
	c := client(t, cluster.Manager{URLs: []string{downURL(t), f.URL()}})
	st, err := c.Cluster(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(st.URL, f.URL()) {
		t.Errorf("answered by %s", st.URL)
	}
	where, err := c.Pause(context.Background(), true)
	if err != nil || !strings.HasPrefix(where, f.URL()) {
		t.Fatalf("pause: %q %v", where, err)
	}
	if f.Config["pause"] != true {
		t.Errorf("config = %v", f.Config)
	}

	all := client(t, cluster.Manager{URLs: []string{downURL(t), downURL(t)}})
	if _, err := all.Pause(context.Background(), true); !errors.Is(err, patroni.ErrNotSent) {
		t.Errorf("all down: %v, want ErrNotSent", err)
	}
	if _, err := all.Cluster(context.Background()); err == nil || !strings.Contains(err.Error(), "no REST API answered") {
		t.Errorf("all down: %v", err)
	}
}

func TestPatroniSwitchoverRefusedVerbatim(t *testing.T) {
	t.Parallel()
	f := patronitest.New(t)
	f.RefuseStatus, f.RefuseReason = 412, "candidate name does not match with sync_standby"
	c := client(t, cluster.Manager{URLs: []string{f.URL()}})
	_, err := c.Switchover(context.Background(), "pg1", "pg2", nil)
	var he *patroni.HTTPError
	if !errors.As(err, &he) || he.Status != 412 || he.Body != f.RefuseReason {
		t.Fatalf("err = %v", err)
	}
	if f.Switchovers[0]["leader"] != "pg1" || f.Switchovers[0]["candidate"] != "pg2" {
		t.Errorf("request = %v", f.Switchovers[0])
	}
}

func TestPatroniNewRejects(t *testing.T) {
	t.Parallel()
	for name, m := range map[string]*cluster.Manager{
		"nil":     nil,
		"kind":    {Kind: "stolon", URLs: []string{"http://x"}},
		"no urls": {Kind: "patroni"},
		"scheme":  {Kind: "patroni", URLs: []string{"ftp://x"}},
		"ca file": {Kind: "patroni", URLs: []string{"https://x"}, CAFile: "/nonexistent/ca.pem"},
	} {
		if _, err := patroni.New(m); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

// An HTTPS API: trusted through the inventory's ca_file, refused without it
// (naming the certificate problem), and let through by insecure.
func TestPatroniTLS(t *testing.T) {
	t.Parallel()
	f, certPEM := patronitest.NewTLS(t)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(f.URL(), "https://") {
		t.Fatalf("fake url %s is not https", f.URL())
	}
	for name, tc := range map[string]struct {
		m       cluster.Manager
		wantErr string
	}{
		"ca_file":  {m: cluster.Manager{URLs: []string{f.URL()}, CAFile: ca}},
		"insecure": {m: cluster.Manager{URLs: []string{f.URL()}, Insecure: true}},
		"neither":  {m: cluster.Manager{URLs: []string{f.URL()}}, wantErr: "certificate"},
	} {
		t.Run(name, func(t *testing.T) {
			c := client(t, tc.m)
			st, err := c.Cluster(context.Background())
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("GET /cluster: %v", err)
			case tc.wantErr == "" && len(st.Leaders()) != 1:
				t.Errorf("cluster = %s", st)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("err = %v, want it to name the %s", err, tc.wantErr)
			}
		})
	}
}

// A switchover request goes to the leader's own API, as /cluster names it,
// not to the first inventory url.
func TestPatroniSwitchoverGoesToTheLeader(t *testing.T) {
	t.Parallel()
	f := patronitest.New(t)
	f.ServeEachMember(t)
	c := client(t, cluster.Manager{URLs: []string{f.URL()}})
	if _, err := c.Switchover(context.Background(), "pg1", "pg2", nil); err != nil {
		t.Fatal(err)
	}
	f.Mu.Lock()
	defer f.Mu.Unlock()
	if got := strings.Join(f.MemberRequests, ", "); got != "pg1 POST /switchover" {
		t.Errorf("members' APIs took %q, want the leader's (pg1) the switchover", got)
	}
}
