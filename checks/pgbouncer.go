package checks

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
)

// PoolerRoutesTo checks the path clients use: through the pooler, the
// client-facing database reaches the given node, and that node accepts
// writes. It writes nothing: it asks the server where it is and whether it
// is in recovery or read-only.
type PoolerRoutesTo struct {
	Node string
}

var _ Check = (*PoolerRoutesTo)(nil)

func init() {
	Register(Definition{
		Kind: "pgbouncer.routes_to",
		Doc:  "through the pooler, clients reach the given node and it accepts writes",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: "the node clients must reach"},
		},
		New: func(v params.Values) (Check, error) { return &PoolerRoutesTo{Node: v.Node("node")}, nil },
	})
}

// Describe implements Check.
func (c *PoolerRoutesTo) Describe(t *cluster.Target) string {
	if t == nil || t.Cluster == nil || len(t.Cluster.Poolers) == 0 {
		return fmt.Sprintf("through the pooler, the client database reaches %s, writable", c.Node)
	}
	if ps := t.Cluster.Poolers; len(ps) > 1 {
		return fmt.Sprintf("through every pooler (%s), its client database reaches %s, writable", strings.Join(t.Cluster.PoolerNames(), ", "), c.Node)
	}
	return fmt.Sprintf("through the pooler, database %s reaches %s, writable", t.Cluster.Poolers[0].Database, c.Node)
}

// viaPooler is what the server behind one pooler's client database said,
// or why it could not be asked (failed).
type viaPooler struct {
	start, readOnly string
	recovery        bool
	failed          *Result
}

// Run implements Check. Every pooler is asked at once; the check fails
// naming each one that does not route to the node. The server behind a
// pooler is identified by its postmaster start time, asked through the
// pooler and of the node directly: addresses and ports alone cannot tell
// nodes apart that all listen on 5432.
func (c *PoolerRoutesTo) Run(ctx context.Context, t *cluster.Target) Result {
	ps := t.Cluster.Poolers
	if len(ps) == 0 {
		return Passed("no pooler in the inventory: clients connect to the nodes directly")
	}
	if _, err := t.Node(c.Node); err != nil {
		return Errored(err)
	}
	vias := make([]viaPooler, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Go(func() { vias[i] = c.through(ctx, p) })
	}
	wg.Wait()
	if len(ps) == 1 && vias[0].failed != nil {
		return *vias[0].failed
	}
	direct, err := connectNode(ctx, t, c.Node)
	if err != nil {
		return Errored(err)
	}
	var directStart, ro string
	var directRecovery bool
	err = direct.QueryRow(ctx, routesAsk).Scan(&directStart, &directRecovery, &ro)
	closeConn(direct)
	if err != nil {
		return Errored(fmt.Errorf("%s: %w", c.Node, err))
	}
	results := make([]Result, len(ps))
	for i, v := range vias {
		results[i] = c.judge(v, directStart)
	}
	if len(ps) == 1 {
		return results[0]
	}
	return c.combine(t, results)
}

// routesAsk identifies a server and says whether it takes writes.
const routesAsk = `SELECT pg_postmaster_start_time()::text, pg_is_in_recovery(), current_setting('transaction_read_only')`

// through asks the server behind one pooler's client database.
func (c *PoolerRoutesTo) through(ctx context.Context, p *cluster.Pooler) viaPooler {
	var v viaPooler
	ci, err := p.ClientConninfo()
	if err != nil {
		r := Errored(err)
		v.failed = &r
		return v
	}
	via, err := pg.ConnectPooled(ctx, ci.Dial())
	if err != nil {
		r := Failed(fmt.Sprintf("a client cannot connect through the pooler: %v", err), "a connection to "+p.Database)
		v.failed = &r
		return v
	}
	defer closeConn(via)
	if err := via.QueryRow(ctx, routesAsk).Scan(&v.start, &v.recovery, &v.readOnly); err != nil {
		r := Failed(fmt.Sprintf("a query through the pooler failed: %v", err), "an answer from "+c.Node)
		v.failed = &r
	}
	return v
}

// judge compares what came through a pooler with the node's own answer.
func (c *PoolerRoutesTo) judge(v viaPooler, directStart string) Result {
	if v.failed != nil {
		return *v.failed
	}
	r := Result{Values: map[string]any{"same_server": v.start == directStart, "in_recovery": v.recovery, "read_only": v.readOnly}}
	who := c.Node
	if v.start != directStart {
		who = "another server than " + c.Node
	}
	r.Observed = fmt.Sprintf("through the pooler: %s, in recovery %v, transaction_read_only %s", who, v.recovery, v.readOnly)
	r.Wanted = fmt.Sprintf("%s, not in recovery, writable", c.Node)
	r.Status = Pass
	if v.start != directStart || v.recovery || v.readOnly == "on" {
		r.Status = Fail
	}
	return r
}

// combine makes one verdict of every pooler's: it fails (or errs) naming
// the poolers that do not route to the node, and says what each saw.
func (c *PoolerRoutesTo) combine(t *cluster.Target, results []Result) Result {
	var seen, bad []string
	status := Pass
	values := map[string]any{}
	for i, r := range results {
		name := t.Cluster.Poolers[i].Name
		seen = append(seen, name+": "+strings.TrimPrefix(r.Observed, "through the pooler: "))
		values[name] = r.Values
		switch r.Status {
		case Pass:
			continue
		case Error:
			if status == Pass {
				status = Error
			}
		default:
			status = Fail
		}
		bad = append(bad, name)
	}
	out := Result{Status: status, Values: values, Observed: strings.Join(seen, "; "),
		Wanted: fmt.Sprintf("every pooler to %s, not in recovery, writable", c.Node)}
	if len(bad) > 0 {
		out.Observed = fmt.Sprintf("not routing to %s, writable: %s; %s", c.Node, strings.Join(bad, ", "), out.Observed)
	}
	return out
}
