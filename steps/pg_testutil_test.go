package steps

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/pgbouncer"
	"github.com/switchover/switchover/internal/sandbox"
)

// stepTimeout bounds every step a sandbox test applies.
const stepTimeout = 90 * time.Second

// sandboxTarget is a Target on a sandbox's cluster, with fresh facts and a
// collector for what the steps print.
func sandboxTarget(sb *sandbox.Sandbox) (*cluster.Target, *printed) {
	p := &printed{}
	return p.target(sb.Cluster()), p
}

// testCtx is a context that ends after d or with the test.
func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// apply builds a step of kind and applies it under stepTimeout. It returns
// the step's error and what it printed, and logs both.
func apply(t *testing.T, tg *cluster.Target, p *printed, kind string, raw map[string]string) ([]string, error) {
	t.Helper()
	s := build(t, kind, raw)
	before := len(p.all())
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	start := time.Now()
	err := s.Apply(ctx, tg)
	out := p.all()[before:]
	t.Logf("%s %v (%s): err=%v\n  %s", kind, raw, time.Since(start).Round(time.Millisecond), err, strings.Join(out, "\n  "))
	return out, err
}

// mustApply is apply that fails the test on an error.
func mustApply(t *testing.T, tg *cluster.Target, p *printed, kind string, raw map[string]string) []string {
	t.Helper()
	out, err := apply(t, tg, p, kind, raw)
	if err != nil {
		t.Fatalf("%s: %v", kind, err)
	}
	return out
}

// hasLine reports whether one of lines contains every one of parts.
func hasLine(lines []string, parts ...string) bool {
	for _, l := range lines {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			return true
		}
	}
	return false
}

// wantLine fails the test unless one of lines contains every one of parts.
func wantLine(t *testing.T, lines []string, parts ...string) {
	t.Helper()
	if !hasLine(lines, parts...) {
		t.Errorf("printed %q, want a line with %q", lines, parts)
	}
}

// nodeConn connects to a sandbox node's database db, closed with the test.
func nodeConn(t *testing.T, sb *sandbox.Sandbox, node, db string) *pgx.Conn {
	t.Helper()
	n, ok := sb.Node(node)
	if !ok {
		t.Fatalf("sandbox has no node %s", node)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pg.Connect(ctx, sb.Conninfo(n, db), 0)
	if err != nil {
		t.Fatalf("connect %s: %v", node, err)
	}
	t.Cleanup(func() { closeConn(conn) })
	return conn
}

// clientConn connects through PgBouncer the way an application does. It
// uses the simple protocol (PgBouncer in transaction mode keeps no
// prepared statements) and sets no statement_timeout, which PgBouncer
// would refuse as a startup parameter.
func clientConn(ctx context.Context, sb *sandbox.Sandbox) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(sb.ClientConninfo())
	if err != nil {
		return nil, err
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	cfg.RuntimeParams["application_name"] = "steps-test-client"
	return pgx.ConnectConfig(ctx, cfg)
}

// clientQuery runs one query through PgBouncer on a new connection, within
// d, and scans one value.
func clientQuery(sb *sandbox.Sandbox, d time.Duration, sql string, dest any) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	conn, err := clientConn(ctx, sb)
	if err != nil {
		return fmt.Errorf("connect through pgbouncer: %w", err)
	}
	defer closeConn(conn)
	return conn.QueryRow(ctx, sql).Scan(dest)
}

// inspect asks a sandbox node what it is, within 5s.
func inspect(sb *sandbox.Sandbox, node string) (pg.State, error) {
	n, ok := sb.Node(node)
	if !ok {
		return pg.State{}, fmt.Errorf("no node %s", node)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pg.Connect(ctx, sb.Conninfo(n, "postgres"), 5*time.Second)
	if err != nil {
		return pg.State{}, err
	}
	defer closeConn(conn)
	return pg.Inspect(ctx, conn)
}

// eventually polls cond every 100ms until it holds, or fails the test after
// within with what cond last saw.
func eventually(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last saw: %s", what, within, seen)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitStreams waits until node is a standby streaming from upstream.
func waitStreams(t *testing.T, sb *sandbox.Sandbox, node, upstream string) pg.State {
	t.Helper()
	up, _ := sb.Node(upstream)
	want := fmt.Sprintf("127.0.0.1:%d", up.Port)
	var st pg.State
	eventually(t, 30*time.Second, node+" streams from "+upstream, func() (bool, string) {
		s, err := inspect(sb, node)
		if err != nil {
			return false, err.Error()
		}
		st = s
		return s.Role == pg.RoleStandby && s.Streaming && s.Upstream == want, fmt.Sprintf("%+v", s)
	})
	return st
}

// readControlData runs pg_controldata on a sandbox node, as the servers' user.
func readControlData(t *testing.T, sb *sandbox.Sandbox, node string) map[string]string {
	t.Helper()
	c := sb.Cluster()
	ex, err := c.Executor(node)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cd, err := controlData(ctx, ex, c.Nodes[node])
	if err != nil {
		t.Fatalf("pg_controldata %s: %v", node, err)
	}
	return cd
}

// wantErr fails the test unless err contains every one of parts.
func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one with %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q, want it to contain %q", err, p)
		}
	}
}

// pgAdmin connects to the sandbox's PgBouncer admin console.
func pgAdmin(ctx context.Context, sb *sandbox.Sandbox) (*pgx.Conn, error) {
	return pgbouncer.Dial(ctx, sb.AdminConninfo())
}

// buildList is build with listKey given as an empty list, which the
// scalar-only build cannot express.
func buildList(t *testing.T, d Definition, raw map[string]string, listKey string) Step {
	t.Helper()
	r := map[string]params.Raw{}
	for k, v := range raw {
		r[k] = params.Raw{Scalar: v}
	}
	r[listKey] = params.Raw{IsList: true}
	v, probs := params.Decode(d.Params, r)
	if len(probs) > 0 {
		t.Fatalf("decode %s: %v", d.Kind, probs)
	}
	s, err := d.New(v)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
