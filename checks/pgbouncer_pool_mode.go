package checks

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pgbouncer"
)

func init() {
	Register(Definition{
		Kind:   "pgbouncer.pool_mode",
		Doc:    "the pooler's client-facing database pools by transaction or statement, so that PAUSE can complete while clients stay connected",
		Params: []params.Spec{},
		New:    func(params.Values) (Check, error) { return &PoolerPoolMode{}, nil },
	})
}

// PoolerPoolMode passes when PgBouncer pools the client-facing database in
// transaction or statement mode, as PgBouncer itself says (SHOW USERS,
// SHOW DATABASES, SHOW CONFIG, in that order of precedence). In session
// mode a server connection belongs to its client until the client
// disconnects, so PAUSE completes only once every client has gone: clients
// would be held for the whole pause budget and the run would fail.
type PoolerPoolMode struct{}

var _ Check = (*PoolerPoolMode)(nil)

// Describe implements Check.
func (c *PoolerPoolMode) Describe(t *cluster.Target) string {
	db := "the client database"
	if t != nil && t.Cluster != nil {
		switch ps := t.Cluster.Poolers; {
		case len(ps) == 1:
			db = "database " + ps[0].Database
		case len(ps) > 1:
			return fmt.Sprintf("every PgBouncer (%s) pools its client database in transaction or statement mode (SHOW USERS, SHOW DATABASES, SHOW CONFIG), not session", strings.Join(t.Cluster.PoolerNames(), ", "))
		}
	}
	return fmt.Sprintf("PgBouncer pools %s in transaction or statement mode (SHOW USERS, SHOW DATABASES, SHOW CONFIG), not session", db)
}

// poolMode is where a pool mode came from and what it is.
type poolMode struct {
	Mode   string
	Source string // e.g. "SHOW DATABASES: app pool_mode", "SHOW CONFIG: pool_mode (the default)"
}

// Run implements Check: every pooler is asked at once, and the check fails
// naming each that pools in session mode.
func (c *PoolerPoolMode) Run(ctx context.Context, t *cluster.Target) Result {
	ps := t.Cluster.Poolers
	if len(ps) == 0 {
		return Passed("no pooler in the inventory: nothing is paused, clients connect to the nodes directly")
	}
	results := make([]Result, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Go(func() { results[i] = c.runOne(ctx, p) })
	}
	wg.Wait()
	if len(ps) == 1 {
		return results[0]
	}
	var seen, wanted, bad []string
	status := Pass
	values := map[string]any{}
	for i, r := range results {
		name := ps[i].Name
		seen = append(seen, name+": "+r.Observed)
		values[name] = r.Values
		if r.Status == Pass {
			continue
		}
		bad = append(bad, name)
		if r.Wanted != "" {
			wanted = append(wanted, name+": "+r.Wanted)
		}
		if r.Status == Fail || status == Pass {
			status = r.Status
		}
	}
	out := Result{Status: status, Observed: strings.Join(seen, "; "), Values: values,
		Wanted: "every pooler's client database pooled by transaction or statement"}
	if len(bad) > 0 {
		out.Observed = "not ready to pause: " + strings.Join(bad, ", ") + "; " + out.Observed
		if len(wanted) > 0 {
			out.Wanted = strings.Join(wanted, "; ")
		}
	}
	return out
}

// runOne judges one pooler.
func (c *PoolerPoolMode) runOne(ctx context.Context, p *cluster.Pooler) Result {
	client, err := pgbouncer.Connect(ctx, p.Admin)
	if err != nil {
		return Errored(fmt.Errorf("connect to the pgbouncer admin console: %s", connProblem(ctx, err)))
	}
	defer client.Close()
	var modes []poolMode
	if user := client.User(); user != "" {
		// A user's own pool_mode wins; SHOW USERS has the column since PgBouncer 1.14.
		users, err := client.Users(ctx)
		if err != nil {
			return Errored(fmt.Errorf("pgbouncer SHOW USERS: %s", queryProblem(ctx, err)))
		}
		modes = append(modes, poolMode{userPoolMode(users, user), fmt.Sprintf("SHOW USERS: %s pool_mode", user)})
	}
	dbs, err := client.Databases(ctx)
	if err != nil {
		return Errored(fmt.Errorf("pgbouncer SHOW DATABASES: %s", queryProblem(ctx, err)))
	}
	d, _ := dbs.Entry(p.Database) // none: the default applies
	modes = append(modes, poolMode{d.PoolMode, fmt.Sprintf("SHOW DATABASES: %s pool_mode", p.Database)})
	cfg, err := client.Config(ctx)
	if err != nil {
		return Errored(fmt.Errorf("pgbouncer SHOW CONFIG: %s", queryProblem(ctx, err)))
	}
	modes = append(modes, poolMode{cfg["pool_mode"], "SHOW CONFIG: pool_mode, the default"})
	return judgePoolMode(p.Database, modes)
}

// userPoolMode is the pool_mode SHOW USERS gives user; "" when it gives
// none.
func userPoolMode(users []pgbouncer.User, user string) string {
	for _, u := range users {
		if u.Name == user {
			return u.PoolMode
		}
	}
	return ""
}

// judgePoolMode takes the first pool mode set, most specific first.
func judgePoolMode(db string, modes []poolMode) Result {
	var got poolMode
	for _, m := range modes {
		if m.Mode != "" {
			got = m
			break
		}
	}
	values := map[string]any{"pool_mode": got.Mode, "source": got.Source}
	wanted := fmt.Sprintf("database %s pooled by transaction or statement", db)
	switch strings.ToLower(got.Mode) {
	case "transaction", "statement":
		r := Passed(fmt.Sprintf("PgBouncer pools %s in %s mode (%s): PAUSE waits only for running transactions", db, got.Mode, got.Source))
		r.Values = values
		return r
	case "session":
		r := Failed(fmt.Sprintf("PgBouncer pools %s in session mode (%s): PAUSE waits until every client of %s has disconnected, so clients would be held for the whole pause budget (pause_max_wait) and the run would fail",
			db, got.Source, db),
			wanted+": set pool_mode = transaction for it (if the application allows), or switch over with a runbook that does not pause the pooler")
		r.Values = values
		return r
	case "":
		return Errored(fmt.Errorf("pgbouncer shows no pool_mode for %s: not in SHOW DATABASES and none in SHOW CONFIG", db))
	}
	r := Failed(fmt.Sprintf("PgBouncer pools %s in mode %q (%s), which switchover does not know", db, got.Mode, got.Source), wanted)
	r.Values = values
	return r
}
