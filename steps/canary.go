package steps

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/canary"
	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/conninfo"
	"github.com/switchover/switchover/internal/params"
)

// sessionCanary is where canary.start leaves its writer for canary.stop.
const sessionCanary = "canary"

func init() {
	Register(Definition{
		Kind: "canary.start",
		Doc:  "starts committing a heartbeat row every few milliseconds through the client-facing endpoint",
		Params: []params.Spec{
			{Name: "via", Type: params.String, Default: "auto", Enum: []string{"auto", "pooler", "direct"},
				Doc: "pooler: through the inventory's pooler; direct: a multi-host connection string over every node with target_session_attrs=read-write; auto: the pooler when there is one, else the router (HAProxy) when there is one"},
			{Name: "conninfo", Type: params.String, Doc: "the endpoint to write through, instead of via"},
			{Name: "pooler", Type: params.String, Doc: "with several poolers, the name of the one to write through; default the first of the inventory"},
			{Name: "database", Type: params.String, Doc: "database for direct writes; default the first node's dbname"},
			{Name: "interval", Type: params.Duration, Default: "5ms", Doc: "time between heartbeats"},
			{Name: "table", Type: params.String, Default: canary.DefaultTable, Doc: "prefix of the heartbeat table; the run id follows it, so every run creates, writes and drops a table of its own"},
			{Name: "existing_table", Type: params.String, Doc: "a table made beforehand to write into instead (schema.table, lower-case; logical-prepare makes switchover_canary.heartbeat with the schema, on both sides, published with the rest): the run neither creates nor drops it, tags its rows with the run id and deletes them at the end. A blue/green move needs it: DDL is not replicated and is refused while the move is pending"},
		},
		New: func(v params.Values) (Step, error) {
			return &CanaryStart{Via: v.String("via"), Conninfo: v.String("conninfo"), Pooler: v.String("pooler"), Database: v.String("database"),
				Interval: v.Duration("interval"), Table: v.String("table"), ExistingTable: v.String("existing_table")}, nil
		},
	})
	Register(Definition{
		Kind: "canary.stop",
		Doc:  "stops the canary, checks every acknowledged heartbeat on the primary, and fails when one is lost",
		New:  func(params.Values) (Step, error) { return &CanaryStop{}, nil },
	})
}

// CanaryStart starts a canary writer for the rest of the run.
type CanaryStart struct {
	Via      string
	Conninfo string
	// Pooler names the pooler written through; "" is the first.
	Pooler   string
	Database string
	Interval time.Duration
	Table    string
	// ExistingTable, when set, is a table that is there already and stays
	// (canary.Options.Existing); Table is then not used.
	ExistingTable string
}

var _ Step = (*CanaryStart)(nil)

// endpoint is the connection string the canary writes through, as this
// process dials it (with the password resolved, if any) and as plans show
// it (without), and how it was chosen.
func (c *CanaryStart) endpoint(t *cluster.Target) (dial, shown, how string, err error) {
	if c.Conninfo != "" {
		return c.Conninfo, c.Conninfo, "the given connection string", nil
	}
	if t == nil || t.Cluster == nil {
		return "", "", "", errors.New("no inventory")
	}
	p, how := t.Cluster.ClientPooler(), "the pooler"
	if c.Pooler != "" && c.Via != "direct" {
		if p = t.Cluster.PoolerNamed(c.Pooler); p == nil {
			return "", "", "", fmt.Errorf("pooler %q is not in the inventory (it has: %s)", c.Pooler, strings.Join(t.Cluster.PoolerNames(), ", "))
		}
	}
	if p != nil && len(t.Cluster.Poolers) > 1 {
		how = "pooler " + p.Name
	}
	switch {
	case c.Via == "pooler" && p == nil:
		return "", "", "", errors.New("via pooler, but the inventory has no pooler")
	case c.Via != "direct" && p != nil:
		ci, err := p.ClientConninfo()
		return ci.Dial(), ci.String(), how, err
	case c.Via == "auto" && t.Cluster.Router != nil:
		ci, err := t.Cluster.Router.ClientConninfo()
		return ci.Dial(), ci.String(), "the router", err
	}
	ci, pw, err := MultiHostConninfo(t.Cluster, c.Database)
	dial = ci
	if pw != "" {
		dial += " password=" + conninfo.Quote(pw)
	}
	return dial, ci, "every node, read-write one", err
}

// MultiHostConninfo is a connection string over every node of the
// cluster that connects to whichever accepts writes: what a client without
// a pooler uses to find the primary after a switchover. It holds no
// password; the first node's, when one resolves, is returned beside it for
// this process to dial with.
func MultiHostConninfo(c *cluster.Cluster, database string) (conninfoString, password string, err error) {
	var hosts, ports []string
	var first *conninfo.Resolved
	for _, name := range c.NodeNames() {
		r, err := conninfo.Resolve(c.Nodes[name].Conninfo)
		if err != nil {
			return "", "", fmt.Errorf("node %q: conninfo: %w", name, err)
		}
		if first == nil {
			first = &r
		}
		hosts = append(hosts, r.Host)
		ports = append(ports, r.PortString())
	}
	if first == nil {
		return "", "", errors.New("the inventory has no nodes")
	}
	if database == "" {
		database = first.Database
	}
	s := fmt.Sprintf("host=%s port=%s user=%s dbname=%s target_session_attrs=read-write connect_timeout=2",
		strings.Join(hosts, ","), strings.Join(ports, ","), conninfo.Quote(first.User), conninfo.Quote(database))
	if first.SSLMode != "" {
		s += " sslmode=" + first.SSLMode
	}
	return s, first.Password(), nil
}

// runID is the run the canary's rows and table are named for.
func runID(t *cluster.Target) string {
	if t != nil && t.RunID != "" {
		return t.RunID
	}
	return "<run id>"
}

// table is this run's heartbeat table.
func (c *CanaryStart) table(t *cluster.Target) string {
	if c.ExistingTable != "" {
		return c.ExistingTable
	}
	return canary.TableFor(c.Table, runID(t))
}

// Describe implements Step.
func (c *CanaryStart) Describe(t *cluster.Target) Effect {
	_, ci, how, err := c.endpoint(t)
	if err != nil {
		ci = "<" + err.Error() + ">"
	}
	table := c.table(t)
	if c.ExistingTable != "" {
		return Effect{Node: "client endpoint (" + how + ")",
			Command: fmt.Sprintf("every %s: INSERT INTO %s (id, run_id) VALUES (n, run) through %s", c.Interval, table, ci),
			Changes: fmt.Sprintf("writes a small row every %s into %s, made beforehand, until canary.stop, which deletes this run's rows", c.Interval, table)}
	}
	return Effect{Node: "client endpoint (" + how + ")",
		Command: fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (...); then every %s: INSERT INTO %s (id, run_id) VALUES (n, run) through %s",
			table, c.Interval, table, ci),
		Changes: fmt.Sprintf("creates table %s, this run's own, and writes a small row every %s until canary.stop, which drops it", table, c.Interval)}
}

// Apply implements Step.
func (c *CanaryStart) Apply(ctx context.Context, t *cluster.Target) error {
	ci, _, how, err := c.endpoint(t)
	if err != nil {
		return fmt.Errorf("canary: %w", err)
	}
	if t.Session == nil {
		return errors.New("canary: no run session to keep the writer in")
	}
	if old, ok := t.Session.Take(sessionCanary); ok {
		old.(*canary.Writer).Close()
	}
	id := t.RunID
	if id == "" {
		id = time.Now().UTC().Format("20060102T150405.000000000")
	}
	table, own := canary.TableFor(c.Table, id), "this run's own table"
	if c.ExistingTable != "" {
		table, own = c.ExistingTable, "made beforehand; this run's rows are tagged with its id"
	}
	w, err := canary.Start(ctx, canary.Options{Conninfo: ci, Interval: c.Interval, Table: table, RunID: id, Existing: c.ExistingTable != ""})
	if err != nil {
		return err
	}
	t.Session.Put(sessionCanary, w)
	t.Facts.Set(cluster.CanaryEndpointFact, how)
	t.Facts.Set(cluster.CanaryTableFact, table)
	t.Print(fmt.Sprintf("canary writing a heartbeat every %s into %s (%s) through %s", c.Interval, table, own, how))
	return nil
}

// CanaryStop stops the run's canary and reports what clients saw.
type CanaryStop struct{}

var _ Step = (*CanaryStop)(nil)

// Describe implements Step.
func (c *CanaryStop) Describe(*cluster.Target) Effect {
	return Effect{Node: "client endpoint",
		Command: "stop the heartbeats; SELECT id FROM <this run's table> WHERE run_id = <run> on the primary; compare with every acknowledged id; DROP TABLE <this run's table> (a table made beforehand: DELETE this run's rows)",
		Changes: "drops this run's canary table (or deletes its rows from a table made beforehand); fails the step when an acknowledged heartbeat is missing"}
}

// Apply implements Step.
func (c *CanaryStop) Apply(ctx context.Context, t *cluster.Target) error {
	v, ok := t.Session.Take(sessionCanary)
	if !ok {
		t.Unchanged("no canary runs in this process (it did not start, or the run was resumed): nothing to report")
		return nil
	}
	r, err := v.(*canary.Writer).Stop(ctx)
	set := t.Facts.Set
	set(cluster.CanaryAckedFact, strconv.Itoa(r.Acked))
	set(cluster.CanaryErrorsFact, strconv.Itoa(r.Errors))
	set(cluster.CanaryWindowMSFact, strconv.FormatFloat(float64(r.Window.Microseconds())/1000, 'f', 1, 64))
	if !r.WindowFrom.IsZero() {
		set(cluster.CanaryWindowFromFact, r.WindowFrom.UTC().Format(time.RFC3339Nano))
		set(cluster.CanaryWindowToFact, r.WindowTo.UTC().Format(time.RFC3339Nano))
	}
	if len(r.Timeline) > 0 {
		set(cluster.CanaryTimelineFact, canaryTimeline(r))
	}
	t.Print(fmt.Sprintf("canary: %d commits acknowledged in %s, %d client errors, longest write gap %s",
		r.Acked, r.Ran.Round(time.Millisecond), r.Errors, r.Window.Round(100*time.Microsecond)))
	for _, k := range r.ErrorKinds {
		t.Print("  client error: " + k)
	}
	if err != nil {
		return err
	}
	set(cluster.CanaryLostFact, strconv.Itoa(len(r.Lost)))
	if len(r.Lost) > 0 {
		ids := make([]string, 0, min(len(r.Lost), 20))
		for _, id := range r.Lost[:min(len(r.Lost), 20)] {
			ids = append(ids, strconv.FormatInt(id, 10))
		}
		set(cluster.CanaryLostIDsFact, strings.Join(ids, ","))
		return fmt.Errorf("canary: %d acknowledged commits are missing on the primary (ids %s)", len(r.Lost), strings.Join(ids, ", "))
	}
	t.Print(fmt.Sprintf("canary: all %d acknowledged commits are on the primary; 0 lost", r.Acked))
	return nil
}

// canaryTimeline writes the commits per bucket as one fact, for the
// report's picture of the window: "start=<RFC 3339> bucket_ms=20 counts=4,4,0,3".
func canaryTimeline(r canary.Report) string {
	counts := make([]string, len(r.Timeline))
	for i, n := range r.Timeline {
		counts[i] = strconv.Itoa(n)
	}
	return fmt.Sprintf("start=%s bucket_ms=%d counts=%s", r.Started.UTC().Format(time.RFC3339Nano), r.Bucket.Milliseconds(), strings.Join(counts, ","))
}
