package checks

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/switchover/switchover/internal/cluster"
)

// patroniServer serves a Patroni REST API whose /config answers body with
// status, and counts the requests.
func patroniServer(t *testing.T, status int, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/config" || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestMaintenanceRun(t *testing.T) {
	t.Parallel()
	paused := patroniServer(t, http.StatusOK, `{"ttl": 30, "loop_wait": 10, "pause": true, "postgresql": {"use_pg_rewind": true}}`)
	running := patroniServer(t, http.StatusOK, `{"ttl": 30, "loop_wait": 10, "postgresql": {"use_pg_rewind": true}}`)
	unpaused := patroniServer(t, http.StatusOK, `{"ttl": 30, "pause": false}`)
	failing := patroniServer(t, http.StatusServiceUnavailable, `{"error": "no DCS"}`)
	garbage := patroniServer(t, http.StatusOK, `<html>not patroni</html>`)
	down := "http://" + closedPort(t)

	tests := []struct {
		name    string
		manager *cluster.Manager
		status  Status
		want    []string
	}{
		{"no manager", nil, Pass, []string{"no cluster manager: no automatic failover to hold off"}},
		{"paused", &cluster.Manager{Kind: "patroni", URLs: []string{paused.URL}}, Pass,
			[]string{"patroni is paused (GET " + paused.URL + "/config says \"pause\": true)"}},
		{"trailing slash", &cluster.Manager{Kind: "patroni", URLs: []string{paused.URL + "/"}}, Pass,
			[]string{"GET " + paused.URL + "/config"}},
		{"not paused", &cluster.Manager{Kind: "patroni", URLs: []string{running.URL}}, Fail,
			[]string{"Patroni would fail over on its own during the switchover; pause it (patronictl pause) or add a patroni.pause step", "patroni paused"}},
		{"pause false", &cluster.Manager{Kind: "patroni", URLs: []string{unpaused.URL}}, Fail, []string{"patroni is not paused"}},
		{"down", &cluster.Manager{Kind: "patroni", URLs: []string{down}}, Error,
			[]string{"no patroni REST API answered", "GET " + down + "/config", "connection refused"}},
		{"first down, second paused", &cluster.Manager{Kind: "patroni", URLs: []string{down, failing.URL, paused.URL}}, Pass,
			[]string{"patroni is paused (GET " + paused.URL + "/config"}},
		{"first down, second not paused", &cluster.Manager{Kind: "patroni", URLs: []string{down, running.URL}}, Fail,
			[]string{"patronictl pause"}},
		{"none answers usefully", &cluster.Manager{Kind: "patroni", URLs: []string{failing.URL, garbage.URL}}, Error,
			[]string{"503", "not with its json"}},
		{"no urls", &cluster.Manager{Kind: "patroni"}, Error, []string{"no REST API url"}},
		{"unknown kind", &cluster.Manager{Kind: "pacemaker", URLs: []string{paused.URL}}, Error, []string{`cluster manager "pacemaker" is not supported`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := mustBuild(t, "cluster.maintenance", map[string]any{})
			tg := &cluster.Target{Cluster: &cluster.Cluster{Name: "test", Manager: tc.manager}, Facts: &cluster.Facts{}}
			r := c.Run(testCtx(t, 0), tg)
			assertResult(t, r, tc.status, tc.want, nil)
		})
	}
}

func TestMaintenanceDescribeHidesPasswords(t *testing.T) {
	t.Parallel()
	c := mustBuild(t, "cluster.maintenance", map[string]any{})
	tg := &cluster.Target{Cluster: &cluster.Cluster{Manager: &cluster.Manager{Kind: "patroni",
		URLs: []string{"http://admin:s3cret@10.0.0.1:8008", "http://10.0.0.2:8008"}}}}
	got := c.Describe(tg)
	if strings.Contains(got, "s3cret") || !strings.Contains(got, "patroni is paused (asked at http://admin:xxxxx@10.0.0.1:8008, http://10.0.0.2:8008)") {
		t.Errorf("describe = %q", got)
	}
	if got := c.Describe(nil); got == "" {
		t.Error("describe without a target is empty")
	}
	// A url with a password that does not answer is reported without it.
	down := "http://admin:s3cret@" + closedPort(t)
	tg.Cluster.Manager.URLs = []string{down}
	assertResult(t, c.Run(testCtx(t, 0), tg), Error, []string{"admin:********@"}, []string{"s3cret"})
}
