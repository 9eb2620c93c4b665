package steps

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/kinds"
	"github.com/switchover/switchover/internal/pgbouncer"
)

// RefusedFact names, for each pooler, the client databases a run's guard
// closed (RefuseClients); see cluster.RefusedByGuardFact.
const RefusedFact = cluster.RefusedByGuardFact

// Refused is what RefusedFact holds: pooler name to database names.
type Refused = cluster.Refused

// ReadRefused reads RefusedFact; nothing when no guard refused clients.
func ReadRefused(t *cluster.Target) (Refused, error) {
	if t == nil || t.Facts == nil {
		return nil, nil
	}
	v, _ := t.Facts.Get(RefusedFact)
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	var r Refused
	if err := json.Unmarshal([]byte(v), &r); err != nil {
		return nil, fmt.Errorf("fact %s is %q, not a map of poolers to databases: %w", RefusedFact, v, err)
	}
	return r, nil
}

// RefuseClients is what a run's guard does when it must let the clients
// this run holds go and no node can be trusted with their writes (two
// nodes take writes, or the cluster's manager does not agree that the one
// that does is its primary: it may be demoting it). Resuming them onto
// such a node could acknowledge commits that are lost a moment later, and
// holding them longer would break the promise of the cap; so in every
// pooler this run paused, each client database is disabled (DISABLE: new
// logins are refused), killed (KILL: the held clients and the server
// connections are closed, so every held client gets an error at once) and
// resumed (KILL leaves it paused), and a pause of the whole pooler is
// resumed. Clients fail fast until the run is resumed, which enables the
// databases again (PgBouncerResume), or an operator sends ENABLE. A
// wildcard entry (`*`) still serves databases not known yet.
func RefuseClients(ctx context.Context, t *cluster.Target) (Refused, error) {
	ps, err := poolers(t)
	if err != nil || len(ps) == 0 {
		return nil, err
	}
	st := readPaused(t)
	var mu sync.Mutex
	refused := Refused{}
	errs := eachPooler(t, ps, func(p *cluster.Pooler, print func(string)) error {
		if ours, _ := pausedByRun(st, p.Name); !ours {
			return nil
		}
		client, err := pgbouncer.Connect(ctx, p.Admin)
		if err != nil {
			return fmt.Errorf("%s: connect to the pgbouncer admin console: %w", label(t, p), err)
		}
		defer client.Close()
		dbs, err := clientDatabases(ctx, client, p)
		if err != nil {
			return fmt.Errorf("%s: %w", label(t, p), err)
		}
		// A database once disabled is recorded at once: whatever fails
		// after, it must be enabled again.
		var done []string
		defer func() {
			if len(done) > 0 {
				mu.Lock()
				refused[p.Name] = done
				mu.Unlock()
			}
		}()
		for _, db := range dbs {
			if err := client.Disable(ctx, db); err != nil {
				return fmt.Errorf("%s: %w", label(t, p), err)
			}
			done = append(done, db)
			if err := client.Kill(ctx, db); err != nil {
				return fmt.Errorf("%s: %w", label(t, p), err)
			}
			if err := client.Resume(ctx, db); err != nil && !pgbouncer.NotPaused(err) {
				return fmt.Errorf("%s: %w", label(t, p), err)
			}
		}
		if p.Database == "" {
			if err := client.Resume(ctx, ""); err != nil && !pgbouncer.NotPaused(err) {
				return fmt.Errorf("%s: %w", label(t, p), err)
			}
		}
		print(fmt.Sprintf("%s: %s disabled, its held clients disconnected and the pause lifted: new clients are refused until ENABLE", label(t, p), strings.Join(done, ", ")))
		return nil
	})
	var failed []string
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err.Error())
		}
	}
	if len(refused) > 0 && t.Facts != nil {
		t.Facts.Set(RefusedFact, refused.String())
	}
	if len(failed) > 0 {
		return refused, fmt.Errorf("refuse clients: %s", strings.Join(failed, "; "))
	}
	return refused, nil
}

// enableRefused sends ENABLE for every database a guard of this run
// disabled (RefusedFact), and forgets the fact once all are enabled.
func enableRefused(ctx context.Context, t *cluster.Target) error {
	r, err := ReadRefused(t)
	if err != nil || len(r) == 0 {
		return err
	}
	ps, err := poolers(t)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	left := Refused{}
	errs := eachPooler(t, ps, func(p *cluster.Pooler, print func(string)) error {
		dbs := r[p.Name]
		if len(dbs) == 0 {
			return nil
		}
		done := 0
		defer func() {
			if done < len(dbs) {
				mu.Lock()
				left[p.Name] = dbs[done:]
				mu.Unlock()
			}
		}()
		client, err := pgbouncer.Connect(ctx, p.Admin)
		if err != nil {
			return fmt.Errorf("%s: connect to the pgbouncer admin console: %w", label(t, p), err)
		}
		defer client.Close()
		for _, db := range dbs {
			if err := client.Enable(ctx, db); err != nil {
				return fmt.Errorf("%s: %w", label(t, p), err)
			}
			done++
		}
		print(fmt.Sprintf("%s: ENABLE %s: the databases the run's guard closed take clients again", label(t, p), strings.Join(dbs, ", ")))
		return nil
	})
	var failed []string
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err.Error())
		}
	}
	if len(left) > 0 {
		t.Facts.Set(RefusedFact, left.String())
		return fmt.Errorf("enable what the guard closed: %s; clients of %s are still refused", strings.Join(failed, "; "), left.Describe())
	}
	t.Facts.Set(RefusedFact, "")
	return nil
}

// clientDatabases are the databases a pooler's pause acts on: its client
// database, or with none in the inventory every database PgBouncer
// serves but its own admin console.
func clientDatabases(ctx context.Context, client *pgbouncer.Client, p *cluster.Pooler) ([]string, error) {
	if p.Database != "" {
		return []string{p.Database}, nil
	}
	all, err := client.Databases(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range all {
		if d.Name != "pgbouncer" && d.Name != "" {
			out = append(out, d.Name)
		}
	}
	return out, nil
}

// guardClients is what a run's guard does to held clients, through the
// poolers (kinds.Clients).
type guardClients struct{}

func (guardClients) RouteTo(ctx context.Context, t *cluster.Target, node string) error {
	return (&PgBouncerRepoint{To: node}).Apply(ctx, t)
}

func (guardClients) Refuse(ctx context.Context, t *cluster.Target) (cluster.Refused, error) {
	return RefuseClients(ctx, t)
}

func (guardClients) Resume(ctx context.Context, t *cluster.Target) error {
	return (&PgBouncerResume{}).Apply(ctx, t)
}

func init() { kinds.SetClients(guardClients{}) }
