package discover

// The PgBouncer in front: its admin console says where each client
// database goes and which file configures it.

import (
	"context"
	"fmt"
	"strings"

	"github.com/switchover/switchover/internal/conninfo"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/pgbouncer"
)

// adminDatabase is PgBouncer's own console, never a client database.
const adminDatabase = "pgbouncer"

// defaultPoolerConfig is where Debian's package keeps PgBouncer's file.
const defaultPoolerConfig = "/etc/pgbouncer/pgbouncer.ini"

// pooler reads the PgBouncer whose admin console o.PgBouncer reaches: the
// client database routed to primary, and its configuration file.
func (w *walker) pooler(ctx context.Context, primary *member) (*Pooler, error) {
	r, err := conninfo.Resolve(w.o.PgBouncer)
	if err != nil {
		return nil, fmt.Errorf("%w: --pgbouncer: %v", ErrOptions, err)
	}
	if HasPassword(w.o.PgBouncer) {
		w.o.Note("--pgbouncer carries a password: it is used to connect and left out of the inventory " +
			"(give it with PGPASSWORD, ~/.pgpass or a passfile instead)")
	}
	where := fmt.Sprintf("the pooler at %s (--pgbouncer)", r.Address())
	ctx, cancel := context.WithTimeout(ctx, 2*w.o.Timeout)
	defer cancel()
	c, err := pgbouncer.Connect(ctx, w.o.PgBouncer)
	if err != nil {
		return nil, &nodeError{What: where, Err: connectProblem(err)}
	}
	defer c.Close()
	dbs, err := c.Databases(ctx)
	if err != nil {
		return nil, &nodeError{What: where, Err: fmt.Errorf("not a PgBouncer admin console (SHOW DATABASES: %v)", err)}
	}
	cfg, err := c.Config(ctx)
	if err != nil {
		return nil, &nodeError{What: where, Err: fmt.Errorf("SHOW CONFIG: %w", err)}
	}
	p := &Pooler{Admin: withTimeout(r, connectTimeout(w.o.PgBouncer))}
	var routed, others []string
	for _, d := range dbs {
		if d.Name == adminDatabase || d.Host == "" {
			continue
		}
		if pg.SameEndpoint(ctx, d.Host+":"+d.Port, primary.endpoint()) {
			routed = append(routed, d.Name)
		} else {
			others = append(others, d.Name)
		}
	}
	switch {
	case len(routed) == 1:
		p.Database = Read(routed[0])
	case len(routed) > 1:
		p.Database = Guess(routed[0], fmt.Sprintf("the first of the entries routed to the primary (%s)", strings.Join(routed, ", ")))
	case len(others) > 0:
		p.Database = Guess(others[0], fmt.Sprintf("no entry routes to the primary %s; the first entry", primary.endpoint()))
		w.o.Note(fmt.Sprintf("%s routes no [databases] entry to the primary %s (%s): preflight will refuse until it does", where, primary.where(), strings.Join(others, ", ")))
	default:
		return nil, &nodeError{What: where, Err: fmt.Errorf("no [databases] entry with a host (SHOW DATABASES lists only its console): nothing to hold and repoint")}
	}
	if f := cfg["conffile"]; f != "" {
		p.Config = Read(f)
	} else {
		p.Config = Guess(defaultPoolerConfig, "SHOW CONFIG gives no conffile; Debian's place for it")
	}
	if p.Host, err = w.hostFor(ctx, adminDatabase, r.Host, p.Config.Text); err != nil {
		return nil, err
	}
	return p, nil
}
