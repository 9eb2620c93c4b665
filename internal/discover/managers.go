package discover

// The nodes as a cluster manager lists them: Patroni's /cluster,
// repmgr.nodes, the pg_auto_failover monitor's pgautofailover.node.

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/conninfo"
	"github.com/switchover/switchover/internal/patroni"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/pgaf"
	"github.com/switchover/switchover/internal/repmgr"
)

// listed is a node as a manager lists it.
type listed struct {
	name   string
	host   string
	port   uint16
	config string // repmgr's config_file
}

// managed reads every node a manager lists (from names the manager, for
// messages): each must answer and be of the cluster the given node is of.
// Each node's address is the manager's, and its name.
func (w *walker) managed(ctx context.Context, from string, list []listed, start *member) error {
	if len(list) == 0 {
		return fmt.Errorf("%s lists no node of this cluster", from)
	}
	for _, l := range list {
		m, err := w.visit(ctx, l.host, l.port, fmt.Sprintf("%s %s", from, l.name))
		if err != nil {
			return err
		}
		if m.managed != "" {
			return fmt.Errorf("%s lists %s and %s at the same server (%s)", from, m.managed, l.name, m.endpoint())
		}
		m.host, m.port, m.managed, m.config = l.host, l.port, l.name, l.config
	}
	if start.managed == "" {
		var names []string
		for _, l := range list {
			names = append(names, fmt.Sprintf("%s at %s", l.name, endpoint(l.host, l.port)))
		}
		return &nodeError{What: fmt.Sprintf("the node at %s (--conninfo)", start.endpoint()),
			Err: fmt.Errorf("is of the cluster but not among the nodes %s lists (%s)", from, strings.Join(names, ", "))}
	}
	w.link()
	return nil
}

// link finds, for every standby, the upstream among the members whose
// pg_stat_replication shows it, and notes the rows no member is behind.
func (w *walker) link() {
	for _, m := range w.members {
		if m.f.State.Role != pg.RoleStandby || m.sender != nil {
			continue
		}
		for _, u := range w.members {
			for i := range u.f.Senders {
				if s := &u.f.Senders[i]; u != m && !s.Logical && streamsAs(m.f, s) {
					m.upstream, m.sender = u, s
				}
			}
		}
	}
	for _, u := range w.members {
		for i := range u.f.Senders {
			s := &u.f.Senders[i]
			if s.Logical || w.behind(s) {
				continue
			}
			w.o.Note(fmt.Sprintf("%s's pg_stat_replication shows a standby (application_name %q, from %s) that is not among the nodes the manager lists: left out",
				u.managed, s.App, s.ClientAddr))
		}
	}
}

// behind reports whether a member is the standby of row s.
func (w *walker) behind(s *pg.WALSender) bool {
	for _, m := range w.members {
		if m.sender == s {
			return true
		}
	}
	return false
}

// patroni lists the members of Patroni's /cluster.
func (w *walker) patroni(ctx context.Context, start *member) (*Manager, error) {
	u, err := url.Parse(strings.TrimSpace(w.o.Patroni))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: --patroni: %s is not an http or https url", ErrOptions, patroni.Redact(w.o.Patroni))
	}
	mgr := &Manager{Kind: cluster.ManagerPatroni}
	if u.User != nil {
		mgr.Username = u.User.Username()
		if _, ok := u.User.Password(); ok {
			w.o.Note("--patroni carries a password: it is used to ask Patroni and left out of the inventory " +
				"(add manager: password: by hand if the REST API needs one)")
		}
	}
	c, err := patroni.New(&cluster.Manager{Kind: cluster.ManagerPatroni, URLs: []string{w.o.Patroni}})
	if err != nil {
		return nil, fmt.Errorf("%w: --patroni: %v", ErrOptions, err)
	}
	c.Timeout = w.o.Timeout
	st, err := c.Cluster(ctx)
	if err != nil {
		return nil, fmt.Errorf("Patroni at %s (--patroni): %w", patroni.Redact(w.o.Patroni), err)
	}
	var list []listed
	for _, m := range st.Members {
		if m.Host == "" || m.Port <= 0 || m.Port > 65535 {
			return nil, fmt.Errorf("Patroni's /cluster (%s) gives member %s no PostgreSQL address (state %s)", st.URL, m.Name, m.State)
		}
		list = append(list, listed{name: m.Name, host: m.Host, port: uint16(m.Port)})
		api := strings.TrimSuffix(strings.TrimRight(m.APIURL, "/"), "/patroni")
		if api == "" {
			return nil, fmt.Errorf("Patroni's /cluster (%s) gives member %s no REST API url", st.URL, m.Name)
		}
		mgr.URLs = append(mgr.URLs, api)
	}
	if err := w.managed(ctx, "Patroni's /cluster", list, start); err != nil {
		return nil, err
	}
	return mgr, nil
}

// pgafMonitor lists the nodes the monitor has for this cluster's system
// identifier: one formation's group.
func (w *walker) pgafMonitor(ctx context.Context, start *member) (*Manager, error) {
	r, err := conninfo.Resolve(w.o.PgafMonitor)
	if err != nil {
		return nil, fmt.Errorf("%w: --pgaf-monitor: %v", ErrOptions, err)
	}
	if HasPassword(w.o.PgafMonitor) {
		w.o.Note("--pgaf-monitor carries a password: it is used to ask the monitor and left out of the inventory " +
			"(give it with PGPASSWORD, ~/.pgpass or a passfile instead)")
	}
	members, err := pgaf.MembersOf(ctx, w.o.PgafMonitor, start.f.SystemID)
	if err != nil {
		return nil, fmt.Errorf("--pgaf-monitor: %w", err)
	}
	if len(members) == 0 {
		return nil, fmt.Errorf("the pg_auto_failover monitor at %s (--pgaf-monitor) has no node of this cluster (system identifier %s)", pgaf.Where(w.o.PgafMonitor), start.f.SystemID)
	}
	mgr := &Manager{Kind: cluster.ManagerPgAutoFailover, Monitor: withTimeout(r, connectTimeout(w.o.PgafMonitor)),
		Formation: members[0].Formation, Group: members[0].Group}
	var list []listed
	for _, m := range members {
		if m.Formation != mgr.Formation || m.Group != mgr.Group {
			return nil, fmt.Errorf("the pg_auto_failover monitor at %s files this cluster's nodes under more than one group (%s/%d, %s/%d)",
				pgaf.Where(w.o.PgafMonitor), mgr.Formation, mgr.Group, m.Formation, m.Group)
		}
		list = append(list, listed{name: m.Name, host: m.Host, port: uint16(m.Port)})
	}
	if err := w.managed(ctx, "the pg_auto_failover monitor", list, start); err != nil {
		return nil, err
	}
	return mgr, nil
}

// repmgr lists the nodes registered in repmgr.nodes, when the given node
// has repmgr's schema in its own database or in database repmgr; nil, nil
// when it has none.
func (w *walker) repmgr(ctx context.Context, start *member) (*Manager, error) {
	var regs []repmgr.Registration
	read := func(ctx context.Context, conn *pgx.Conn) error {
		ok, err := repmgr.HasSchema(ctx, conn)
		if err != nil || !ok {
			return err
		}
		regs, err = repmgr.Registrations(ctx, conn)
		return err
	}
	db := w.tmpl.Database
	if err := query(ctx, w.dialAt(start.host, start.port), w.o.Timeout, read); err != nil {
		return nil, &nodeError{What: start.where() + " (--conninfo)", Err: fmt.Errorf("look for repmgr's schema: %w", err)}
	}
	if regs == nil && db != repmgr.DefaultDatabase {
		db = repmgr.DefaultDatabase
		r := w.tmpl
		r.Host, r.Port, r.Database = start.host, start.port, db
		dial := withTimeout(r, w.connectTimeout)
		if w.password != "" {
			dial += " password=" + conninfo.Quote(w.password)
		}
		if err := query(ctx, dial, w.o.Timeout, read); err != nil && !noSuchDatabase(err) {
			w.o.Note(fmt.Sprintf("database %s on %s could not be read, so repmgr was not looked for there: %v", db, start.endpoint(), err))
		}
	}
	if regs == nil {
		return nil, nil
	}
	mgr := &Manager{Kind: cluster.ManagerRepmgr, Database: db, Configs: map[string]Value{}}
	var list []listed
	for _, g := range regs {
		if g.Type == "witness" || !g.Active {
			w.o.Note(fmt.Sprintf("repmgr.nodes: %s (%s, active %t) left out: not an active node of the cluster", g.Name, g.Type, g.Active))
			continue
		}
		r, err := conninfo.Resolve(g.Conninfo)
		if err != nil {
			return nil, fmt.Errorf("repmgr.nodes: the conninfo of %s: %v", g.Name, err)
		}
		list = append(list, listed{name: g.Name, host: r.Host, port: r.Port, config: g.ConfigFile})
	}
	if err := w.managed(ctx, "repmgr.nodes", list, start); err != nil {
		return nil, err
	}
	for _, l := range list {
		if l.config != "" {
			mgr.Configs[l.name] = Read(l.config)
		} else {
			mgr.Configs[l.name] = Guess("/etc/repmgr.conf", "repmgr.nodes records no config_file for it; /etc/repmgr.conf is repmgr's default")
		}
	}
	return mgr, nil
}

// noSuchDatabase reports whether err is PostgreSQL's "database does not
// exist".
func noSuchDatabase(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "3D000" || strings.Contains(err.Error(), "SQLSTATE 3D000")
}

// connectTimeout is the connect_timeout s gives, 0 when none.
func connectTimeout(s string) time.Duration {
	cfg, err := pgconn.ParseConfig(conninfo.Effective(s))
	if err != nil {
		return 0
	}
	return cfg.ConnectTimeout
}
