package checks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/pgbouncer"
	"github.com/switchover/switchover/internal/transport"
)

// PGSameCluster passes when every node of the inventory is of one and the
// same cluster, proven by the system identifier initdb drew for it: the
// identifier each server gives (pg_control_system()) equals the one in the
// control file of the node's data_dir, read on its host over its transport
// (pg_controldata in bin_dir), all nodes give the same one, and the pooler's
// client-facing database reaches a server of that cluster. An inventory whose
// data_dir, conninfo or pooler entry names another cluster on the same host
// would otherwise have the run stop one cluster's server, take its control
// file as proof, and promote in another: two writable primaries.
type PGSameCluster struct {
	Nodes []string // empty: every node of the inventory
}

var _ Check = (*PGSameCluster)(nil)

func init() {
	Register(Definition{
		Kind: "pg.same_cluster",
		Doc:  "every node's server and the control file of its data_dir give one system identifier, the same on every node, and the pooler routes to a server of that cluster",
		Params: []params.Spec{
			{Name: "nodes", Type: params.Nodes, Doc: "the nodes to compare; empty means every node of the inventory"},
		},
		New: func(v params.Values) (Check, error) {
			return &PGSameCluster{Nodes: dedupe(v.Strings("nodes"))}, nil
		},
	})
}

// Describe implements Check.
func (c *PGSameCluster) Describe(t *cluster.Target) string {
	s := fmt.Sprintf("%s: the system identifier from SQL (pg_control_system()) equals the one pg_controldata reads in the node's data_dir, and all are one", describeNodes(c.Nodes))
	if t != nil && t.Cluster != nil {
		for _, p := range t.Cluster.Poolers {
			s += fmt.Sprintf("; the %s's database %s reaches a server of that cluster", t.Cluster.PoolerLabel(p), p.Database)
		}
	}
	return s
}

// nodeIdentity is what one node says about the cluster it belongs to.
type nodeIdentity struct {
	Node    string
	Address string // host:port of its conninfo
	Server  string // the server's system identifier; "" when it did not answer
	Down    string // why the server did not answer, when no server listens
	DataDir string
	Where   string // the host its control file was read on
	Control string // the control file's system identifier; "" when not read
	// Fail is a verdict on this node (its data_dir holds no control file,
	// the two identifiers differ); Err is why it could not be evaluated.
	Fail string
	Err  error
}

// Run implements Check.
func (c *PGSameCluster) Run(ctx context.Context, t *cluster.Target) Result {
	return withWanted(c.run(ctx, t), c, t)
}

func (c *PGSameCluster) run(ctx context.Context, t *cluster.Target) Result {
	names, err := nodeNames(t, c.Nodes)
	if err != nil {
		return Errored(err)
	}
	ids := make([]nodeIdentity, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() { ids[i] = readIdentity(ctx, t, name) })
	}
	wg.Wait()

	var fails, errs []string
	values := map[string]any{}
	for _, id := range ids {
		values[id.Node] = map[string]any{"server": id.Server, "control_file": id.Control, "data_dir": id.DataDir}
		switch {
		case id.Fail != "":
			fails = append(fails, id.Fail)
		case id.Err != nil:
			errs = append(errs, id.Err.Error())
		}
	}
	// The nodes that gave an identifier, by identifier.
	byID := map[string][]string{}
	for _, id := range ids {
		if v := id.identifier(); v != "" && id.Fail == "" {
			byID[v] = append(byID[v], id.Node)
		}
	}
	clusterID := ""
	if len(byID) > 1 {
		fails = append(fails, apart(byID))
	} else {
		for v := range byID {
			clusterID = v
		}
	}
	values["system_identifier"] = clusterID
	wanted := "one system identifier on every node, from SQL and from the control file of its data_dir, and the pooler routing to a server of that cluster"
	if len(fails) > 0 {
		r := Failed(strings.Join(fails, "; "), wanted)
		r.Detail = strings.Join(errs, "\n")
		r.Values = values
		return r
	}
	if len(errs) > 0 {
		r := Result{Status: Error, Observed: strings.Join(errs, "; "), Wanted: wanted, Values: values}
		return r
	}
	if clusterID == "" {
		return Errored(errors.New("no node gave a system identifier"))
	}
	observed := fmt.Sprintf("%s: system identifier %s (%s)", strings.Join(names, ", "), clusterID, sources(ids))
	if len(t.Cluster.Poolers) > 0 {
		routes, ok, why := poolersIdentity(ctx, t, ids, clusterID)
		values["pooler"] = strings.Join(routes, "; ")
		if !ok {
			r := Failed(why, wanted)
			r.Values = values
			return r
		}
		observed += "; " + strings.Join(routes, "; ")
	}
	recordIdentities(t, ids, clusterID)
	r := Passed(observed)
	r.Values = values
	return r
}

// recordIdentities records, as the fact cluster.SystemIDFact, the system
// identifier of every node whose server gave it: a pg.stop later in the run
// then compares the control file with it without asking the server while
// clients are held. A fact already there is left as it is.
func recordIdentities(t *cluster.Target, ids []nodeIdentity, clusterID string) {
	if t == nil || t.Facts == nil {
		return
	}
	for _, id := range ids {
		if id.Server != clusterID {
			continue
		}
		key := cluster.SystemIDFact(id.Node)
		if v, ok := t.Facts.Get(key); ok && v == clusterID {
			continue
		}
		t.Facts.Set(key, clusterID)
	}
}

// identifier is the node's system identifier: its server's, or its control
// file's when the server does not answer.
func (id nodeIdentity) identifier() string {
	if id.Server != "" {
		return id.Server
	}
	return id.Control
}

// sources says where the identifiers came from, in a few words.
func sources(ids []nodeIdentity) string {
	var parts []string
	for _, id := range ids {
		switch {
		case id.Server != "" && id.Control != "":
			parts = append(parts, fmt.Sprintf("%s: server and control file of %s", id.Node, id.DataDir))
		case id.Server != "":
			parts = append(parts, fmt.Sprintf("%s: server; no data_dir in the inventory", id.Node))
		default:
			parts = append(parts, fmt.Sprintf("%s: control file of %s; the server does not answer (%s)", id.Node, id.DataDir, id.Down))
		}
	}
	return strings.Join(parts, "; ")
}

// apart names the nodes that are not of the same cluster as the others.
func apart(byID map[string][]string) string {
	type group struct {
		id    string
		nodes []string
	}
	var gs []group
	for id, nodes := range byID {
		sort.Strings(nodes)
		gs = append(gs, group{id, nodes})
	}
	sort.Slice(gs, func(i, j int) bool {
		if len(gs[i].nodes) != len(gs[j].nodes) {
			return len(gs[i].nodes) > len(gs[j].nodes)
		}
		return gs[i].id < gs[j].id
	})
	var parts []string
	for _, g := range gs {
		parts = append(parts, fmt.Sprintf("%s: system identifier %s", strings.Join(g.nodes, ", "), g.id))
	}
	return "the nodes are not of one cluster: " + strings.Join(parts, "; ")
}

// readIdentity asks a node's server for its system identifier and reads
// the control file of its data_dir on its host.
func readIdentity(ctx context.Context, t *cluster.Target, name string) nodeIdentity {
	id := nodeIdentity{Node: name}
	n, err := t.Node(name)
	if err != nil {
		id.Err = err
		return id
	}
	id.DataDir = n.DataDir
	if eps, err := conninfoEndpoints(n.Conninfo); err == nil {
		id.Address = eps[0]
	}
	conn, err := connectNode(ctx, t, name)
	if err == nil {
		id.Server, err = pg.SystemIdentifier(ctx, conn)
		closeConn(conn)
		if err != nil {
			id.Err = fmt.Errorf("%s: %s", name, queryProblem(ctx, err))
			return id
		}
	} else {
		var cerr *connectError
		if !errors.As(err, &cerr) || !noServer(err) {
			// A server answered and refused us (a wrong password, say), or
			// the inventory is wrong: nothing is proven.
			id.Err = err
			return id
		}
		id.Down = cerr.Reason
	}
	if n.DataDir == "" {
		if id.Server == "" {
			id.Err = fmt.Errorf("%s: the server does not answer (%s) and the inventory gives no data_dir to read its control file in", name, id.Down)
		}
		return id
	}
	ex, err := t.Executor(name)
	if err != nil {
		id.Err = err
		return id
	}
	id.Where = ex.Where()
	bin := "pg_controldata"
	if n.BinDir != "" {
		bin = filepath.Join(n.BinDir, bin)
	}
	cmd := fmt.Sprintf("LC_ALL=C %s -D %s", transport.ShellQuote(bin), transport.ShellQuote(n.DataDir))
	out, err := ex.Run(ctx, cmd)
	switch {
	case err != nil:
		id.Err = fmt.Errorf("%s: %s on %s: %w", name, cmd, id.Where, err)
		return id
	case out.ExitCode != 0 && strings.Contains(out.Combined(), "Permission denied"):
		id.Err = fmt.Errorf("%s: %s on %s may not read the control file (permission denied): the inventory's host user must be the data directory's owner",
			name, cmd, id.Where)
		return id
	case out.ExitCode != 0:
		id.Fail = fmt.Sprintf("%s: its data_dir %s on %s holds no control file we can read (%s exited %d: %s): it is not that node's data directory",
			name, n.DataDir, id.Where, cmd, out.ExitCode, strings.ReplaceAll(tailLines(out.Combined(), 2, 200), "\n", " | "))
		return id
	}
	id.Control = pg.ParseControlData(out.Stdout)[pg.ControlSystemIdentifier]
	if id.Control == "" {
		id.Err = fmt.Errorf("%s: %s on %s printed no %q", name, cmd, id.Where, pg.ControlSystemIdentifier)
		return id
	}
	if id.Server != "" && id.Server != id.Control {
		id.Fail = fmt.Sprintf("%s: the server at %s has system identifier %s, but the control file in its data_dir %s (on %s) has %s: the inventory's data_dir and conninfo name two different clusters",
			name, id.Address, id.Server, n.DataDir, id.Where, id.Control)
	}
	return id
}

// noServer reports whether a failed connection found no server listening
// (refused, no route, a closed socket), as opposed to one that answered.
func noServer(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return false
	}
	var cerr *connectError
	if errors.As(err, &cerr) {
		r := strings.ToLower(cerr.Reason)
		return strings.Contains(r, "refused") || strings.Contains(r, "unreachable") || strings.Contains(r, "no such file")
	}
	return false
}

// poolerProbe bounds the query through the pooler: a pooler paused by
// someone else holds it, and the route is then proven by address alone.
const poolerProbe = 3 * time.Second

// poolerIdentity proves that the pooler's client-facing database reaches
// a server of the cluster: the system identifier asked through the pooler,
// or, when the pooler holds queries (paused), the address its entry routes
// to being a node's. It says what it saw either way.
func poolerIdentity(ctx context.Context, p *cluster.Pooler, ids []nodeIdentity, clusterID string) (seen string, ok bool, why string) {
	route, paused, err := poolerRoute(ctx, p)
	if err != nil {
		return "", false, fmt.Sprintf("the pooler's route for %s could not be read: %v", p.Database, err)
	}
	node := ""
	for _, id := range ids {
		if id.Address != "" && pg.SameEndpoint(ctx, route, id.Address) {
			node = id.Node
			break
		}
	}
	if !paused {
		via, err := throughPooler(ctx, p)
		if err == nil {
			if via != clusterID {
				return "", false, fmt.Sprintf("the pooler routes %s to %s, a server of another cluster: system identifier %s through the pooler, %s on the nodes",
					p.Database, route, via, clusterID)
			}
			where := route
			if node != "" {
				where = fmt.Sprintf("%s (%s)", route, node)
			}
			return fmt.Sprintf("the pooler routes %s to %s, system identifier %s through the pooler", p.Database, where, via), true, ""
		}
		if ctx.Err() != nil {
			return "", false, fmt.Sprintf("no answer through the pooler's database %s: %v", p.Database, err)
		}
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			return "", false, fmt.Sprintf("a client cannot use the pooler's database %s: %v", p.Database, err)
		}
	}
	if node == "" {
		return "", false, fmt.Sprintf("the pooler routes %s to %s, which is no node of the inventory, and it could not be asked through the pooler (paused)", p.Database, route)
	}
	return fmt.Sprintf("the pooler routes %s to %s (%s); paused, so not asked through it", p.Database, route, node), true, ""
}

// poolersIdentity proves it of every pooler, asked at once: what each
// was seen to route to, in the inventory's order, or why one does not.
func poolersIdentity(ctx context.Context, t *cluster.Target, ids []nodeIdentity, clusterID string) (seen []string, ok bool, why string) {
	type answer struct {
		seen, why string
		ok        bool
	}
	ps := t.Cluster.Poolers
	answers := make([]answer, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Go(func() {
			a := &answers[i]
			a.seen, a.ok, a.why = poolerIdentity(ctx, p, ids, clusterID)
		})
	}
	wg.Wait()
	var whys []string
	for i, a := range answers {
		label := ""
		if len(ps) > 1 {
			label = ps[i].Name + ": "
		}
		if !a.ok {
			whys = append(whys, label+a.why)
			continue
		}
		seen = append(seen, label+a.seen)
	}
	if len(whys) > 0 {
		return seen, false, strings.Join(whys, "; ")
	}
	return seen, true, ""
}

// throughPooler asks the server behind the pooler's client-facing database
// for its system identifier.
func throughPooler(ctx context.Context, p *cluster.Pooler) (string, error) {
	ci, err := p.ClientConninfo()
	if err != nil {
		return "", err
	}
	pctx, cancel := context.WithTimeout(ctx, poolerProbe)
	defer cancel()
	conn, err := pg.ConnectPooled(pctx, ci.Dial())
	if err != nil {
		return "", err
	}
	defer closeConn(conn)
	return pg.SystemIdentifier(pctx, conn)
}

// poolerRoute reads where PgBouncer's entry for the client-facing database
// points (SHOW DATABASES) and whether that database is paused.
func poolerRoute(ctx context.Context, p *cluster.Pooler) (route string, paused bool, err error) {
	if p.Kind != "" && p.Kind != "pgbouncer" {
		return "", false, fmt.Errorf("the pooler is %q; only pgbouncer can be asked", p.Kind)
	}
	client, err := pgbouncer.Connect(ctx, p.Admin)
	if err != nil {
		return "", false, fmt.Errorf("connect to the pgbouncer admin console: %w", err)
	}
	defer client.Close()
	d, err := client.Database(ctx, p.Database)
	if err != nil {
		return "", false, err
	}
	return net.JoinHostPort(d.Host, d.Port), d.Paused, nil
}
