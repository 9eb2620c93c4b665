package steps

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pgbouncer"
)

func init() {
	Register(Definition{
		Kind: "pgbouncer.pause",
		Doc:  "pauses the client database of every pooler, all or none: clients wait instead of failing while the primary moves",
		Params: []params.Spec{
			{Name: "max_wait", Type: params.Duration, Default: "2s",
				Doc: "how long one PAUSE may wait for running transactions to finish, on every pooler at once, while new clients wait behind it; after that every pooler is resumed at once"},
			{Name: "max_hold", Type: params.Duration, Default: "30s",
				Doc: "the most clients may be held, from the pause to the resume, whatever happens: every step in between spends it, and a guard that outlives the run resumes the pooler by then"},
			{Name: "node", Type: params.Node,
				Doc: "the node the poolers send the clients to (the primary): when a PAUSE does not complete, the transactions it waited for are read there and named, and the PAUSE is tried again once they end"},
			{Name: "attempts", Type: params.Int, Default: "3",
				Doc: "how many times PAUSE is tried when it does not complete within max_wait (needs node): between two, clients go on and the transactions it waited for are given retry_within to end"},
			{Name: "retry_within", Type: params.Duration, Default: "30s",
				Doc: "how long, between two attempts, the transactions a PAUSE waited for may take to end, with no client held; still running then, the step fails, naming them"},
			{Name: "stage_repoint", Type: params.Node,
				Doc: "the node a later pgbouncer.repoint of this run sends clients to: before clients are held, each pooler's configuration repointed there is written beside it (<config>.switchover-staged), so that the repoint, clients held, only moves it in place once it has checked that neither file changed (one command, no input: over ssh it runs in the host's shell)"},
		},
		New: func(v params.Values) (Step, error) {
			switch {
			case v.Duration("max_wait") <= 0:
				return nil, errors.New(`parameter "max_wait" must be more than 0`)
			case v.Duration("max_hold") <= 0:
				return nil, errors.New(`parameter "max_hold" must be more than 0`)
			case v.Duration("max_wait") >= v.Duration("max_hold"):
				return nil, fmt.Errorf(`parameter "max_wait" (%s) must be less than "max_hold" (%s): the pause itself spends the hold`, v.Duration("max_wait"), v.Duration("max_hold"))
			}
			if v.Int("attempts") < 1 {
				return nil, fmt.Errorf(`parameter "attempts" (%d) must be 1 or more`, v.Int("attempts"))
			}
			if v.Duration("retry_within") <= 0 {
				return nil, errors.New(`parameter "retry_within" must be more than 0`)
			}
			return &PgBouncerPause{MaxWait: v.Duration("max_wait"), MaxHold: v.Duration("max_hold"), Node: v.Node("node"),
				Attempts: int(v.Int("attempts")), RetryWithin: v.Duration("retry_within"), StageRepoint: v.Node("stage_repoint")}, nil
		},
	})
	Register(Definition{
		Kind: "pgbouncer.resume",
		Doc:  "resumes every pooler this run paused, so waiting clients go on; succeeds when one is not paused",
		New:  func(params.Values) (Step, error) { return &PgBouncerResume{}, nil },
	})
	Register(Definition{
		Kind: "pgbouncer.repoint",
		Doc:  "points every [databases] entry that routes where the client database does (the primary) at another node, in every pooler, and reloads them; entries pointing elsewhere are left alone",
		Params: []params.Spec{
			{Name: "to", Type: params.Node, Required: true, Doc: "the node clients are to reach, usually the new primary; its conninfo gives host and port"},
		},
		New: func(v params.Values) (Step, error) {
			return &PgBouncerRepoint{To: v.Node("to")}, nil
		},
	})
}

// errNoPooler: the inventory has no pooler, so clients connect to the
// nodes directly and the pooler steps have nothing to do.
var errNoPooler = errors.New("the inventory has no pooler")

// skipNoPooler says so and succeeds when err is errNoPooler.
func skipNoPooler(t *cluster.Target, err error, what string) bool {
	if !errors.Is(err, errNoPooler) {
		return false
	}
	t.Unchanged("no pooler in the inventory: clients connect to the nodes directly; nothing to " + what)
	return true
}

// poolers returns the inventory's poolers, which must all be PgBouncers.
func poolers(t *cluster.Target) ([]*cluster.Pooler, error) {
	if t == nil || t.Cluster == nil || len(t.Cluster.Poolers) == 0 {
		return nil, errNoPooler
	}
	for _, p := range t.Cluster.Poolers {
		if p.Kind != "" && p.Kind != "pgbouncer" {
			if len(t.Cluster.Poolers) == 1 {
				return nil, fmt.Errorf("the inventory's pooler is %q, not pgbouncer", p.Kind)
			}
			return nil, fmt.Errorf("the inventory's pooler %s is %q, not pgbouncer", p.Name, p.Kind)
		}
	}
	return t.Cluster.Poolers, nil
}

// label names a pooler in output: "pgbouncer" when it is the only one,
// "pgbouncer NAME" when there are several.
func label(t *cluster.Target, p *cluster.Pooler) string {
	if t == nil || t.Cluster == nil || len(t.Cluster.Poolers) <= 1 {
		return "pgbouncer"
	}
	return "pgbouncer " + p.Name
}

// poolerWhere names the poolers for plans: "pgbouncer (local as postgres)",
// or each by name when there are several.
func poolerWhere(t *cluster.Target) string {
	ps, err := poolers(t)
	if err != nil {
		return fmt.Sprintf("pgbouncer (%v)", err)
	}
	var out []string
	for _, p := range ps {
		ex, err := p.Host.Executor()
		if err != nil {
			out = append(out, fmt.Sprintf("%s (%v)", label(t, p), err))
			continue
		}
		out = append(out, fmt.Sprintf("%s (%s)", label(t, p), ex.Where()))
	}
	return strings.Join(out, ", ")
}

// poolerDatabase is the database entry the steps act on, for messages.
func poolerDatabase(p *cluster.Pooler) string {
	if p != nil && p.Database != "" {
		return p.Database
	}
	return "<database>"
}

// poolersDatabase is the database entries the steps act on, for plans:
// "app", or "app on pgb1, pgb2" with several poolers.
func poolersDatabase(t *cluster.Target) string {
	ps, err := poolers(t)
	if err != nil {
		return "<database>"
	}
	dbs := map[string]bool{}
	for _, p := range ps {
		dbs[poolerDatabase(p)] = true
	}
	if len(ps) == 1 {
		return poolerDatabase(ps[0])
	}
	if len(dbs) == 1 {
		return fmt.Sprintf("%s on every pooler (%s)", poolerDatabase(ps[0]), strings.Join(t.Cluster.PoolerNames(), ", "))
	}
	var each []string
	for _, p := range ps {
		each = append(each, p.Name+": "+poolerDatabase(p))
	}
	return "the client database of every pooler (" + strings.Join(each, ", ") + ")"
}

// adminCommand is an admin console command for the pooler's database; with
// no database in the inventory it acts on every database.
func adminCommand(verb string, p *cluster.Pooler) string {
	if p == nil {
		return verb
	}
	return pgbouncer.Command(verb, p.Database)
}

// describeAdmin is the admin command of a plan: "PAUSE app", or with
// several poolers the command on each.
func describeAdmin(t *cluster.Target, verb string) string {
	ps, err := poolers(t)
	if err != nil {
		return verb + " <database>"
	}
	if len(ps) == 1 {
		return adminCommand(verb, ps[0])
	}
	same := true
	for _, p := range ps {
		same = same && p.Database == ps[0].Database
	}
	if same {
		return fmt.Sprintf("%s on %s (at once)", adminCommand(verb, ps[0]), strings.Join(t.Cluster.PoolerNames(), ", "))
	}
	var each []string
	for _, p := range ps {
		each = append(each, fmt.Sprintf("%s: %s", p.Name, adminCommand(verb, p)))
	}
	return strings.Join(each, "; ") + " (at once)"
}

// withAdmin runs f with a client of the pooler's admin console.
func withAdmin(ctx context.Context, p *cluster.Pooler, f func(*pgbouncer.Client) error) error {
	client, err := pgbouncer.Connect(ctx, p.Admin)
	if err != nil {
		return fmt.Errorf("connect to the pgbouncer admin console: %w", err)
	}
	defer client.Close()
	return f(client)
}

// sessionAdmin is the key under which a step leaves its admin console
// client of pooler for the next step of the run in this process: the
// repoint leaves it for the resume, which then sends RESUME without
// connecting while clients are held.
func sessionAdmin(pooler string) string { return "pgbouncer.admin." + pooler }

// keepAdmin leaves client in the run's session for the next step; without
// a session it is closed. A client already there is closed first.
func keepAdmin(t *cluster.Target, p *cluster.Pooler, client *pgbouncer.Client) {
	if t == nil || t.Session == nil {
		client.Close()
		return
	}
	if old, ok := t.Session.Take(sessionAdmin(p.Name)); ok {
		if c, ok := old.(*pgbouncer.Client); ok {
			c.Close()
		}
	}
	t.Session.Put(sessionAdmin(p.Name), client)
}

// withKeptAdmin runs f with the client an earlier step of the run left
// (keepAdmin), then closes it; when there is none, or f fails with it
// (its connection broke since), f runs again with a client of its own.
// f must be safe to run twice (RESUME of a database that is no longer
// paused is refused, which the caller takes as done).
func withKeptAdmin(ctx context.Context, t *cluster.Target, p *cluster.Pooler, f func(*pgbouncer.Client) error) error {
	if c := takeKeptAdmin(t, p); c != nil {
		err := f(c)
		c.Close()
		if err == nil || pgbouncer.NotPaused(err) {
			return err
		}
	}
	return withAdmin(ctx, p, f)
}

// takeKeptAdmin takes the admin client an earlier step of the run left for
// pooler p (keepAdmin), nil when there is none.
func takeKeptAdmin(t *cluster.Target, p *cluster.Pooler) *pgbouncer.Client {
	if t == nil || t.Session == nil {
		return nil
	}
	v, _ := t.Session.Take(sessionAdmin(p.Name))
	c, _ := v.(*pgbouncer.Client)
	return c
}

// eachPooler runs f for every pooler at once and returns what each
// returned, in the inventory's order; f's output lines are kept apart
// and printed in that order once all are done, so the poolers' lines do
// not interleave.
func eachPooler(t *cluster.Target, ps []*cluster.Pooler, f func(p *cluster.Pooler, print func(string)) error) []error {
	errs := make([]error, len(ps))
	lines := make([][]string, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Go(func() {
			errs[i] = f(p, func(line string) { lines[i] = append(lines[i], line) })
		})
	}
	wg.Wait()
	for _, ls := range lines {
		for _, l := range ls {
			t.Print(l)
		}
	}
	return errs
}

// PausedFact is the fact pgbouncer.pause journals about the pauses it sent,
// so that only a run whose journal says it paused a pooler resumes it: a
// run never releases clients another run (or an operator) holds. Its value
// is a state when every pooler is in that one, else NAME=STATE for each
// pooler, comma-separated: pausedSent just before PAUSE goes out,
// pausedYes once it completed, pausedNo when PgBouncer refused it or the
// run resumed the pooler since.
const PausedFact = cluster.PausedByRunFact

// The states of a pooler in PausedFact.
const (
	pausedSent = "sent"
	pausedYes  = "yes"
	pausedNo   = "no"
)

// pauseStates is what PausedFact says of each pooler, by name.
type pauseStates map[string]string

// readPaused reads PausedFact. A bare state (a journal of one pooler, or
// every pooler alike) is every pooler's.
func readPaused(t *cluster.Target) pauseStates {
	out := pauseStates{}
	if t == nil || t.Facts == nil {
		return out
	}
	v, _ := t.Facts.Get(PausedFact)
	if v == "" {
		return out
	}
	if !strings.Contains(v, "=") {
		if t.Cluster != nil {
			for _, name := range t.Cluster.PoolerNames() {
				out[name] = v
			}
		}
		return out
	}
	for _, part := range strings.Split(v, ",") {
		if name, state, ok := strings.Cut(part, "="); ok {
			out[strings.TrimSpace(name)] = strings.TrimSpace(state)
		}
	}
	return out
}

// writePaused journals which poolers this run holds paused.
func writePaused(t *cluster.Target, st pauseStates) {
	if t == nil || t.Facts == nil || t.Cluster == nil {
		return
	}
	names := t.Cluster.PoolerNames()
	if len(names) == 0 {
		return
	}
	same := true
	for _, n := range names {
		if st[n] == "" || st[n] != st[names[0]] {
			same = false
		}
	}
	if same {
		t.Facts.Set(PausedFact, st[names[0]])
		return
	}
	var parts []string
	for _, n := range names {
		if st[n] != "" {
			parts = append(parts, n+"="+st[n])
		}
	}
	t.Facts.Set(PausedFact, strings.Join(parts, ","))
}

// setPausedAll journals one state for every pooler.
func setPausedAll(t *cluster.Target, state string) {
	st := pauseStates{}
	if t != nil && t.Cluster != nil {
		for _, n := range t.Cluster.PoolerNames() {
			st[n] = state
		}
	}
	writePaused(t, st)
}

// pausedByRun reports whether this run's journal says it paused pooler
// name (or sent PAUSE and could not tell), and says what it knows.
func pausedByRun(st pauseStates, name string) (bool, string) {
	switch st[name] {
	case pausedYes:
		return true, "this run paused it"
	case pausedSent:
		return true, "this run sent PAUSE and did not hear back"
	case pausedNo:
		return false, "this run resumed it already, or its PAUSE was refused"
	}
	return false, "this run never paused it"
}

// pausedAlready says how the pooler is paused now ("SHOW STATE: paused",
// "SHOW DATABASES: app paused"), or "" when it is not: the whole pooler,
// or the database entry a PAUSE of this inventory acts on.
func pausedAlready(ctx context.Context, client *pgbouncer.Client, p *cluster.Pooler) (string, error) {
	dbs, err := client.Databases(ctx)
	if err != nil {
		return "", err
	}
	var names []string
	for _, d := range dbs {
		if d.Paused && (p.Database == "" || d.Name == p.Database) {
			names = append(names, d.Name)
		}
	}
	if len(names) > 0 {
		return "SHOW DATABASES: " + strings.Join(names, ", ") + " paused", nil
	}
	// A PAUSE of the whole pooler shows in SHOW STATE (PgBouncer 1.19 and
	// later); older ones do not know the command.
	state, err := client.State(ctx)
	if err != nil {
		return "", err
	}
	if state.Paused || state.Suspended {
		return "SHOW STATE: the whole pooler is paused", nil
	}
	return "", nil
}
