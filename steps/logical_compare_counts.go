package steps

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/logical"
	"github.com/switchover/switchover/internal/params"
)

func init() {
	Register(Definition{
		Kind: "logical.compare_counts",
		Doc:  "counts the rows of some tables on two nodes at once and fails on the first difference, naming the table and both counts",
		Params: []params.Spec{
			{Name: "from", Type: params.Node, Required: true, Doc: "inventory node of one side (blue's primary)"},
			{Name: "to", Type: params.Node, Required: true, Doc: "inventory node of the other (green's primary)"},
			{Name: "tables", Type: params.Strings, Doc: "the tables to count (public.orders, or orders on the search_path); default the sample smallest tables"},
			{Name: "sample", Type: params.Int, Default: "10", Doc: "without tables: how many of the published tables to count, the smallest on from first (fast inside the held window); 0 counts every table"},
		},
		New: func(v params.Values) (Step, error) {
			s := &LogicalCompareCounts{From: v.Node("from"), To: v.Node("to"), Tables: v.Strings("tables"), Sample: int(v.Int("sample"))}
			if s.Sample < 0 {
				return nil, fmt.Errorf("sample is %d: want 0 or more", s.Sample)
			}
			return s, params.DistinctNodes(s.From, "from", s.To, "to")
		},
	})
}

// LogicalCompareCounts is a step of the cutover, after the catch-up and
// with clients held: both sides must then hold the same rows, and a count
// is the cheapest look at that. It runs inside the held window, so it
// counts a few tables (the smallest by default), both nodes at once, each
// count bounded by the step's time.
type LogicalCompareCounts struct {
	From, To string
	Tables   []string
	Sample   int
}

var _ Step = (*LogicalCompareCounts)(nil)

// Describe implements Step.
func (s *LogicalCompareCounts) Describe(t *cluster.Target) Effect {
	which := fmt.Sprintf("the %d smallest published tables of %s", s.Sample, s.From)
	if len(s.Tables) > 0 {
		which = strings.Join(s.Tables, ", ")
	} else if s.Sample == 0 {
		which = "every published table of " + s.From
	}
	return Effect{Node: nodeWhere(t, s.To),
		Command: fmt.Sprintf("SELECT count(*) FROM <table> on %s and on %s at once, for %s", s.From, s.To, which),
		Changes: ""}
}

// Apply implements Step.
func (s *LogicalCompareCounts) Apply(ctx context.Context, t *cluster.Target) error {
	fail := func(err error) error { return fmt.Errorf("compare row counts of %q and %q: %w", s.From, s.To, err) }
	from, err := logicalConn(ctx, t, s.From)
	if err != nil {
		return fail(err)
	}
	defer closeConn(from)
	to, err := logicalConn(ctx, t, s.To)
	if err != nil {
		return fail(err)
	}
	defer closeConn(to)
	var tables []string
	if len(s.Tables) > 0 {
		for _, name := range s.Tables {
			q, err := logical.ResolveTable(ctx, from, name)
			if err != nil {
				return fail(fmt.Errorf("%s: %w", s.From, err))
			}
			tables = append(tables, q)
		}
	} else if tables, err = logical.SmallestTables(ctx, from, s.Sample); err != nil {
		return fail(err)
	}
	start := time.Now()
	for _, table := range tables {
		var a, b int64
		var errA, errB error
		var wg sync.WaitGroup
		count := func(c *pgx.Conn, n *int64, e *error) {
			defer wg.Done()
			*n, *e = logical.Count(ctx, c, table)
		}
		wg.Add(2)
		go count(from, &a, &errA)
		go count(to, &b, &errB)
		wg.Wait()
		switch {
		case errA != nil:
			return fail(fmt.Errorf("on %s: %w", s.From, errA))
		case errB != nil:
			return fail(fmt.Errorf("on %s: %w", s.To, errB))
		case a != b:
			return fail(fmt.Errorf("%s has %d rows on %s and %d on %s", table, a, s.From, b, s.To))
		}
	}
	t.Print(fmt.Sprintf("%d tables have as many rows on %s as on %s (counted in %s)", len(tables), s.To, s.From, since(start)))
	return nil
}
