package checks

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
)

func init() {
	Register(Definition{
		Kind: "cluster.maintenance",
		Doc:  "the cluster manager, if any, is paused (maintenance mode), so it cannot fail over on its own during the switchover",
		New:  func(params.Values) (Check, error) { return &Maintenance{}, nil },
	})
}

// Maintenance passes when no cluster manager runs, or when the inventory's
// cluster manager is paused. A manager that is not paused sees the primary
// stop during the switchover and fails over on its own, to a node of its
// choosing: the premature failovers Chargify's maintenance mode was for
// (seeds/003).
type Maintenance struct{}

var _ Check = (*Maintenance)(nil)

// managerTimeout bounds one request to a cluster manager's API, so that one
// member that does not answer leaves time to ask the next.
const managerTimeout = 5 * time.Second

// Describe implements Check.
func (c *Maintenance) Describe(t *cluster.Target) string {
	if t == nil || t.Cluster == nil || t.Cluster.Manager == nil {
		return "the cluster manager, if the inventory names one, is paused"
	}
	m := t.Cluster.Manager
	return fmt.Sprintf("%s is paused (asked at %s)", m.Kind, strings.Join(redactURLs(m.URLs), ", "))
}

// Run implements Check.
func (c *Maintenance) Run(ctx context.Context, t *cluster.Target) Result {
	if t == nil || t.Cluster == nil || t.Cluster.Manager == nil {
		return Passed("no cluster manager: no automatic failover to hold off")
	}
	m := t.Cluster.Manager
	switch m.Kind {
	case "patroni":
		return patroniPaused(ctx, m.URLs)
	}
	return Errored(fmt.Errorf("cluster manager %q is not supported (only patroni is)", m.Kind))
}

// redactURLs renders urls for messages, without passwords.
func redactURLs(urls []string) []string {
	out := make([]string, len(urls))
	for i, s := range urls {
		out[i] = redactURL(s)
	}
	return out
}

func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "(a malformed url)"
}

// patroniPaused asks the members' REST APIs for the dynamic configuration,
// in order, until one answers, and judges its "pause" flag.
func patroniPaused(ctx context.Context, urls []string) Result {
	if len(urls) == 0 {
		return Errored(errors.New("patroni: the inventory gives no REST API url to ask whether it is paused"))
	}
	tr := &http.Transport{
		Proxy:             nil, // never the environment's proxy
		DialContext:       (&net.Dialer{}).DialContext,
		TLSClientConfig:   &tls.Config{},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	var problems []string
	for _, base := range urls {
		where := redactURL(strings.TrimRight(base, "/") + "/config")
		paused, err := patroniConfigPause(ctx, client, base)
		if err != nil {
			problems = append(problems, fmt.Sprintf("GET %s: %v", where, err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		values := map[string]any{"manager": "patroni", "url": where, "pause": paused}
		if paused {
			r := Passed(fmt.Sprintf("patroni is paused (GET %s says \"pause\": true)", where))
			r.Values = values
			r.Detail = strings.Join(problems, "\n")
			return r
		}
		r := Failed(fmt.Sprintf("patroni is not paused (GET %s has no \"pause\": true): Patroni would fail over on its own during the switchover; pause it (patronictl pause) or add a patroni.pause step", where),
			"patroni paused (maintenance mode)")
		r.Values = values
		r.Detail = strings.Join(problems, "\n")
		return r
	}
	return Result{Status: Error,
		Observed: fmt.Sprintf("no patroni REST API answered, so whether it is paused is unknown: %s", strings.Join(problems, "; ")),
		Detail:   strings.Join(problems, "\n")}
}

// patroniConfigPause GETs base/config and reads its "pause" flag.
func patroniConfigPause(ctx context.Context, client *http.Client, base string) (bool, error) {
	u, err := parseHTTPURL(strings.TrimRight(strings.TrimSpace(base), "/") + "/config")
	if err != nil {
		return false, err
	}
	rctx, cancel := context.WithTimeout(ctx, managerTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("User-Agent", "switchover")
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return false, errors.New(httpProblem(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxHTTPBody))
	if err != nil {
		return false, fmt.Errorf("reading the answer broke off: %s", httpProblem(err))
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("answered %d: %s", resp.StatusCode, excerpt(body, 120))
	}
	var cfg struct {
		Pause *bool `json:"pause"`
	}
	if err := json.Unmarshal(body, &cfg); err != nil {
		return false, fmt.Errorf("answered 200 but not with a json object: %s", excerpt(body, 120))
	}
	return cfg.Pause != nil && *cfg.Pause, nil
}
