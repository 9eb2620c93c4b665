package checks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/patroni"
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
	if m.Kind == cluster.ManagerRepmgr {
		return "repmgrd is paused on every node (SELECT repmgr.repmgrd_is_paused())"
	}
	if m.Kind == cluster.ManagerPgAutoFailover {
		return "no pg_auto_failover monitor is in charge (a monitor cannot be paused)"
	}
	return fmt.Sprintf("%s is paused (asked at %s)", m.Kind, strings.Join(patroniURLs(m.URLs), ", "))
}

// Run implements Check.
func (c *Maintenance) Run(ctx context.Context, t *cluster.Target) Result {
	if t == nil || t.Cluster == nil || t.Cluster.Manager == nil {
		return Passed("no cluster manager: no automatic failover to hold off")
	}
	m := t.Cluster.Manager
	switch m.Kind {
	case cluster.ManagerPatroni:
		return patroniPaused(ctx, m)
	case cluster.ManagerRepmgr:
		return repmgrdPaused(ctx, t.Cluster)
	case cluster.ManagerPgAutoFailover:
		// A monitor has no maintenance mode for a whole group: it fails
		// over from a primary stopped behind its back.
		return Failed("pg_auto_failover's monitor cannot be paused: it fails over on its own. pg-auto-failover-switchover has the monitor switch over itself; a runbook that stops or promotes servers directly must not run under a monitor",
			"no cluster manager, or one that is paused")
	}
	return Errored(fmt.Errorf("cluster manager %q is not supported (only patroni and repmgr are)", m.Kind))
}

// patroniURLs renders urls for messages, without passwords.
func patroniURLs(urls []string) []string {
	out := make([]string, len(urls))
	for i, u := range urls {
		out[i] = patroni.Redact(u)
	}
	return out
}

func patroniPaused(ctx context.Context, m *cluster.Manager) Result {
	if len(m.URLs) == 0 {
		return Errored(errors.New("patroni: the inventory gives no REST API url to ask whether it is paused"))
	}
	pc, err := patroni.New(m)
	if err != nil {
		return Errored(err)
	}
	cfg, err := pc.Config(ctx)
	if err != nil {
		return Result{Status: Error,
			Observed: fmt.Sprintf("no patroni REST API answered, so whether it is paused is unknown: %v", err),
			Wanted:   "an answer to GET /config from one of the inventory's patroni urls"}
	}
	values := map[string]any{"manager": "patroni", "url": cfg.URL, "pause": cfg.Pause}
	if cfg.Pause {
		r := Passed(fmt.Sprintf("patroni is paused (GET %s says \"pause\": true)", cfg.URL))
		r.Values = values
		return r
	}
	r := Failed(fmt.Sprintf("patroni is not paused (GET %s has no \"pause\": true): Patroni would fail over on its own during the switchover; pause it (patronictl pause) or add a patroni.pause step", cfg.URL),
		"patroni paused (maintenance mode)")
	r.Values = values
	return r
}
