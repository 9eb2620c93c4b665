package steps

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
)

// maxPrintedRows caps how many result rows pg.sql prints: enough to read a
// small report, not enough to drown the run's output in a large table.
const maxPrintedRows = 20

func init() {
	Register(Definition{
		Kind: "pg.sql",
		Doc:  "runs SQL on a node and prints the first rows of its result",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: nodeSpecDoc},
			{Name: "sql", Type: params.String, Required: true, Doc: "the SQL, run as given through the node's conninfo; several statements run in one implicit transaction"},
		},
		New: func(v params.Values) (Step, error) {
			s := &PGSQL{Node: v.Node("node"), SQL: v.String("sql")}
			if strings.TrimSpace(s.SQL) == "" {
				return nil, errors.New(`parameter "sql" is empty`)
			}
			return s, nil
		},
	})
}

// PGSQL is a step that runs SQL a runbook gives, for the reports and the odd
// change no dedicated step kind covers.
type PGSQL struct {
	Node string
	SQL  string
}

var _ Step = (*PGSQL)(nil)

// Describe implements Step.
func (s *PGSQL) Describe(t *cluster.Target) Effect {
	return Effect{Node: nodeWhere(t, s.Node), Command: s.SQL,
		Changes: fmt.Sprintf("whatever this SQL changes on %s", s.Node)}
}

// Apply implements Step. It runs the SQL with the simple query protocol, so
// a runbook may give several statements; for each statement it prints the
// column names and rows (up to maxPrintedRows in all) or the command tag.
// The statement timeout is what is left of ctx, so a statement cut off here
// is cancelled on the server too.
func (s *PGSQL) Apply(ctx context.Context, t *cluster.Target) error {
	n, err := t.Node(s.Node)
	if err != nil {
		return fmt.Errorf("sql on %q: %w", s.Node, err)
	}
	conn, err := connectNode(ctx, nil, n, remaining(ctx))
	if err != nil {
		return fmt.Errorf("sql on %q: %w", s.Node, err)
	}
	defer closeConn(conn)
	mrr := conn.PgConn().Exec(ctx, s.SQL)
	printed, skipped := 0, 0
	for mrr.NextResult() {
		rr := mrr.ResultReader()
		fields := rr.FieldDescriptions()
		if len(fields) > 0 && printed < maxPrintedRows {
			names := make([]string, len(fields))
			for i, f := range fields {
				names[i] = f.Name
			}
			t.Print(strings.Join(names, " | "))
		}
		rows := 0
		for rr.NextRow() {
			rows++
			if printed >= maxPrintedRows {
				skipped++
				continue
			}
			printed++
			vals := rr.Values()
			cells := make([]string, len(vals))
			for i, v := range vals {
				if v == nil {
					cells[i] = "NULL"
				} else {
					cells[i] = string(v)
				}
			}
			t.Print(strings.Join(cells, " | "))
		}
		tag, err := rr.Close()
		if err != nil {
			_ = mrr.Close()
			return fmt.Errorf("sql on %q: %w", s.Node, err)
		}
		if len(fields) > 0 {
			t.Print(fmt.Sprintf("(%d %s)", rows, plural(rows, "row", "rows")))
		} else if tag.String() != "" {
			t.Print(tag.String())
		}
	}
	if err := mrr.Close(); err != nil {
		return fmt.Errorf("sql on %q: %w", s.Node, err)
	}
	if skipped > 0 {
		t.Print(fmt.Sprintf("[%d more %s not shown]", skipped, plural(skipped, "row", "rows")))
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
