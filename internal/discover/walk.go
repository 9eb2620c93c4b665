package discover

// The walk: from the node given, up to the primary and down every
// standby streaming from it, or through the members a manager lists.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/switchover/switchover/internal/conninfo"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/secret"
)

// maxDepth bounds a chain of cascading standbys followed upwards.
const maxDepth = 8

// member is one server found, with how it was found.
type member struct {
	name Value
	host string
	port uint16
	f    *facts
	from string // how it was found, for messages: "--conninfo", "pg1's pg_stat_replication"
	// upstream is the member a standby streams from (nil: not streaming,
	// or not found yet); sender is the row of its upstream's
	// pg_stat_replication that is this standby.
	upstream *member
	sender   *pg.WALSender
	// managed is the name a manager gives the node ("" without one);
	// config is repmgr's config_file for it.
	managed string
	config  string
}

// endpoint is host:port, as messages and pg.SameEndpoint take it.
func (m *member) endpoint() string { return endpoint(m.host, m.port) }

func endpoint(host string, port uint16) string {
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}

// where names the member for messages.
func (m *member) where() string {
	if m.name.Text != "" {
		return fmt.Sprintf("%s at %s", m.name.Text, m.endpoint())
	}
	return "the node at " + m.endpoint()
}

// walker carries one discovery.
type walker struct {
	o    Options
	tmpl conninfo.Resolved // the given conninfo: every node's, host and port aside
	// password is the one given in --conninfo, used for every node; ""
	// lets each connection find its own (PGPASSWORD, pgpass).
	password       string
	connectTimeout time.Duration // the given conninfo's connect_timeout, kept in every node's
	members        []*member
}

func newWalker(o Options) (*walker, error) {
	if strings.TrimSpace(o.Conninfo) == "" {
		return nil, fmt.Errorf("%w: no connection string given (--conninfo)", ErrOptions)
	}
	r, err := conninfo.Resolve(o.Conninfo)
	if err != nil {
		return nil, fmt.Errorf("%w: --conninfo: %v", ErrOptions, err)
	}
	cfg, err := pgconn.ParseConfig(conninfo.Effective(o.Conninfo))
	if err != nil {
		return nil, fmt.Errorf("%w: --conninfo: %v", ErrOptions, conninfo.Problem(o.Conninfo, err))
	}
	w := &walker{o: o, tmpl: r, connectTimeout: cfg.ConnectTimeout}
	if HasPassword(o.Conninfo) {
		w.password = r.Password()
		o.Note("--conninfo carries a password: it is used to connect and left out of the inventory " +
			"(give it with PGPASSWORD, ~/.pgpass or a passfile instead)")
	}
	return w, nil
}

// HasPassword reports whether a connection string carries a password
// itself (a password field, or one in a URI's user information).
func HasPassword(s string) bool { return (*secret.Redactor)(nil).Redact(s) != s }

// conninfoAt is the inventory's conninfo of the node at host:port: the
// given one's user, database and TLS settings, never a password.
func (w *walker) conninfoAt(host string, port uint16) string {
	r := w.tmpl
	r.Host, r.Port = host, port
	return withTimeout(r, w.connectTimeout)
}

// withTimeout renders r with its connect_timeout, when one was given.
func withTimeout(r conninfo.Resolved, timeout time.Duration) string {
	s := r.String()
	if secs := int(timeout / time.Second); secs > 0 {
		s += " connect_timeout=" + strconv.Itoa(secs)
	}
	return s
}

// dialAt is conninfoAt with the given password, for this process only.
func (w *walker) dialAt(host string, port uint16) string {
	s := w.conninfoAt(host, port)
	if w.password != "" {
		s += " password=" + conninfo.Quote(w.password)
	}
	return s
}

// visit reads the server at host:port and adds it; from says how it was
// found. A server of another cluster is refused; one already found,
// reached another way, is returned as it is.
func (w *walker) visit(ctx context.Context, host string, port uint16, from string) (*member, error) {
	f, err := readNode(ctx, w.dialAt(host, port), w.o.Timeout)
	if err != nil {
		m := &member{host: host, port: port}
		return nil, &nodeError{What: fmt.Sprintf("%s (%s)", m.where(), from), Err: err}
	}
	return w.add(host, port, from, f)
}

// add adds the server at host:port, which answered f.
func (w *walker) add(host string, port uint16, from string, f *facts) (*member, error) {
	m := &member{host: host, port: port, from: from, f: f}
	if len(w.members) > 0 && f.SystemID != w.members[0].f.SystemID {
		first := w.members[0]
		return nil, &nodeError{What: fmt.Sprintf("%s (%s)", m.where(), from),
			Err: fmt.Errorf("a node of another cluster: its system identifier is %s, that of %s (%s) is %s", f.SystemID, first.endpoint(), first.from, first.f.SystemID)}
	}
	for _, o := range w.members {
		if o.f.sameServer(f) {
			return o, nil
		}
	}
	w.members = append(w.members, m)
	return m, nil
}

// at returns the member at host:port, or nil.
func (w *walker) at(ctx context.Context, host string, port uint16) *member {
	for _, m := range w.members {
		if m.port == port && pg.SameEndpoint(ctx, m.endpoint(), endpoint(host, port)) {
			return m
		}
	}
	return nil
}

// streaming walks a cluster without a manager: from the node given up to
// the primary, then down from the primary through every pg_stat_replication.
func (w *walker) streaming(ctx context.Context, start *member) error {
	cur := start
	for depth := 0; cur.f.State.Role == pg.RoleStandby; depth++ {
		if depth == maxDepth {
			return fmt.Errorf("%s: more than %d standbys upstream of one another; give the primary's conninfo", start.where(), maxDepth)
		}
		up, src := cur.f.State.Upstream, "the server its WAL receiver streams from (pg_stat_wal_receiver)"
		if up == "" {
			up, src = cur.f.State.Configured, "its primary_conninfo"
		}
		if up == "" {
			return &nodeError{What: cur.where(), Err: fmt.Errorf("a standby that streams from no server, and whose primary_conninfo names none or may not be read by this role: give the primary's conninfo")}
		}
		h, p, ok := pg.SplitEndpoint(up)
		port, err := strconv.Atoi(p)
		if !ok || err != nil {
			return &nodeError{What: cur.where(), Err: fmt.Errorf("its upstream %q is not host:port", up)}
		}
		next, err := w.visit(ctx, h, uint16(port), fmt.Sprintf("upstream of %s: %s", cur.where(), src))
		if err != nil {
			return err
		}
		if next == cur || slices.Contains(w.chain(cur), next) {
			return &nodeError{What: cur.where(), Err: fmt.Errorf("streams from itself or from one of its own standbys (%s)", next.where())}
		}
		cur.upstream = next
		cur = next
	}
	queue := []*member{cur}
	for len(queue) > 0 {
		up := queue[0]
		queue = queue[1:]
		for i := range up.f.Senders {
			s := &up.f.Senders[i]
			if s.Logical {
				continue
			}
			m, isNew, err := w.downstream(ctx, up, s)
			if err != nil {
				return err
			}
			if isNew {
				queue = append(queue, m)
			}
		}
	}
	return nil
}

// chain is the members upstream of m.
func (w *walker) chain(m *member) []*member {
	var out []*member
	for u := m.upstream; u != nil && len(out) <= maxDepth; u = u.upstream {
		out = append(out, u)
	}
	return out
}

// downstream finds the standby behind one row of up's pg_stat_replication:
// a member already found (the node given, say), or the server at the
// address the row shows, on a port tried in turn (the row has none).
func (w *walker) downstream(ctx context.Context, up *member, s *pg.WALSender) (*member, bool, error) {
	for _, m := range w.members {
		if m.sender == nil && m.f.State.Role == pg.RoleStandby && (m.upstream == nil || m.upstream == up) && streamsAs(m.f, s) {
			m.upstream, m.sender = up, s
			return m, false, nil
		}
	}
	host := s.ClientAddr
	if host == "" {
		host = s.ClientHostname
	}
	if host == "" {
		host = up.host // over a Unix socket: on the upstream's host
	}
	from := fmt.Sprintf("%s's pg_stat_replication", up.name.Text)
	if up.name.Text == "" {
		from = fmt.Sprintf("pg_stat_replication of %s", up.endpoint())
	}
	ports := w.ports(ctx, host)
	type try struct {
		f   *facts
		err error
	}
	tries := make([]try, len(ports))
	sem := make(chan struct{}, 8)
	done := make(chan struct{})
	for i, p := range ports {
		go func() {
			sem <- struct{}{}
			defer func() { <-sem; done <- struct{}{} }()
			tries[i].f, tries[i].err = readNode(ctx, w.dialAt(host, p), w.o.Timeout)
		}()
	}
	for range ports {
		<-done
	}
	var refused, unnamed []string
	for i, t := range tries {
		if t.err != nil {
			if errors.Is(t.err, errRefused) {
				refused = append(refused, fmt.Sprintf("port %d: %v", ports[i], t.err))
			}
			continue
		}
		if t.f.SystemID != up.f.SystemID || t.f.State.Role != pg.RoleStandby {
			continue
		}
		if !streamsAs(t.f, s) {
			if t.f.ReceiverApp == "" && t.f.OwnApp == "" && t.f.State.SlotName == "" {
				unnamed = append(unnamed, strconv.Itoa(int(ports[i])))
			}
			continue
		}
		m, err := w.add(host, ports[i], from, t.f)
		if err != nil {
			return nil, false, err
		}
		m.upstream, m.sender = up, s
		return m, true, nil
	}
	what := fmt.Sprintf("the pg_stat_replication of %s shows a standby (application_name %q, connected from %s)", up.endpoint(), s.App, host)
	why := fmt.Sprintf("no standby of this cluster streaming under that name answers on %s at the ports tried (%s); the view does not say its port: list the ports to try with --ports", host, portList(ports))
	if len(unnamed) > 0 {
		why = fmt.Sprintf("standbys of this cluster answer on %s (port %s), but this role may not read the name they stream under "+
			"(pg_stat_wal_receiver, primary_conninfo): connect as a superuser, or a role granted pg_monitor", host, strings.Join(unnamed, ", "))
	}
	if len(refused) > 0 {
		why += "; refused: " + strings.Join(refused, "; ")
	}
	return nil, false, &nodeError{What: what, Err: errors.New(why)}
}

// streamsAs reports whether the standby f is the one row s of its
// upstream's pg_stat_replication shows: by the name it streams under, or
// by the slot it streams through.
func streamsAs(f *facts, s *pg.WALSender) bool {
	if s.SlotName != "" && f.State.SlotName == s.SlotName {
		return true
	}
	app := f.ReceiverApp
	if app == "" {
		app = f.OwnApp
	}
	return app != "" && app == s.App
}

// ports are the ports tried for a standby on host whose port the cluster
// does not say: the known ports first (every member's, 5432), then the
// operator's list or the ports next to the known ones, nearest first;
// never one where a member already is.
func (w *walker) ports(ctx context.Context, host string) []uint16 {
	seen := map[int]bool{}
	var out []uint16
	add := func(p int) {
		if p <= 0 || p > 65535 || seen[p] {
			return
		}
		seen[p] = true
		if w.at(ctx, host, uint16(p)) == nil {
			out = append(out, uint16(p))
		}
	}
	var known []int
	for _, m := range w.members {
		known = append(known, int(m.port))
	}
	known = append(known, 5432)
	for _, p := range known {
		add(p)
	}
	if len(w.o.Ports) > 0 {
		for _, p := range w.o.Ports {
			add(p)
		}
		return out
	}
	for d := 1; d <= NeighbourPorts; d++ {
		for _, p := range known {
			add(p + d)
			add(p - d)
		}
	}
	return out
}

// portList shows the ports tried, ranges folded: "5432, 54311-54331".
func portList(ports []uint16) string {
	s := slices.Clone(ports)
	slices.Sort(s)
	var parts []string
	for i := 0; i < len(s); {
		j := i
		for j+1 < len(s) && s[j+1] == s[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d-%d", s[i], s[j]))
		} else {
			parts = append(parts, strconv.Itoa(int(s[i])))
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}
