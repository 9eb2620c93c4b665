package checks

import (
	"context"
	"errors"
	"fmt"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
)

func init() {
	Register(Definition{
		Kind: "pg.role",
		Doc:  "a node is a primary, or a standby (in recovery)",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true,
				Doc: "inventory node to ask"},
			{Name: "is", Type: params.String, Required: true, Enum: []string{"primary", "standby"},
				Doc: "the role it must have: primary (not in recovery) or standby (in recovery)"},
			{Name: "writable", Type: params.Bool,
				Doc: "with is: primary, it also takes writes: a new transaction there is not read-only (a manager may hold a promoted node read-only for a while)"},
		},
		New: newPGRole,
	})
}

// PGRole passes when a node has the role a step expects, as the node itself
// says with pg_is_in_recovery(): before a promotion the candidate must be a
// standby, after it a primary.
type PGRole struct {
	Node     string
	Is       pg.Role
	Writable bool // a primary that also takes writes
}

var _ Check = (*PGRole)(nil)

func newPGRole(v params.Values) (Check, error) {
	c := &PGRole{Node: v.Node("node"), Is: pg.Role(v.String("is")), Writable: v.Bool("writable")}
	if c.Node == "" {
		return nil, errors.New("node is empty")
	}
	if c.Is != pg.RolePrimary && c.Is != pg.RoleStandby {
		return nil, fmt.Errorf("is %q: want primary or standby", c.Is)
	}
	if c.Writable && c.Is != pg.RolePrimary {
		return nil, errors.New("writable: only with is: primary")
	}
	return c, nil
}

// Describe implements Check.
func (c *PGRole) Describe(*cluster.Target) string {
	if c.Writable {
		return fmt.Sprintf("%s is a primary taking writes", c.Node)
	}
	return fmt.Sprintf("%s is a %s", c.Node, c.Is)
}

// Run implements Check.
func (c *PGRole) Run(ctx context.Context, t *cluster.Target) Result {
	return withWanted(c.run(ctx, t), c, t)
}

// run evaluates the check once; Run fills in what it wanted when it
// ended in an error before saying so.
func (c *PGRole) run(ctx context.Context, t *cluster.Target) Result {
	conn, err := connectNode(ctx, t, c.Node)
	if err != nil {
		return Errored(err)
	}
	defer closeConn(conn)
	st, err := pg.Inspect(ctx, conn)
	if err != nil {
		return Errored(fmt.Errorf("inspect %s: %w", c.Node, err))
	}
	var observed string
	values := map[string]any{"role": string(st.Role), "timeline": st.Timeline}
	if st.Role == pg.RolePrimary {
		observed = fmt.Sprintf("%s is a primary (not in recovery) on timeline %d at %s", c.Node, st.Timeline, st.CurrentLSN)
		values["current_lsn"] = st.CurrentLSN.String()
	} else {
		observed = fmt.Sprintf("%s is a standby (in recovery) on timeline %d, replayed %s", c.Node, st.Timeline, st.ReplayLSN)
		values["replay_lsn"] = st.ReplayLSN.String()
	}
	wanted := c.Describe(t)
	readOnly := false
	if c.Writable && st.Role == pg.RolePrimary {
		if err := conn.QueryRow(ctx, "SELECT current_setting('transaction_read_only')::bool").Scan(&readOnly); err != nil {
			return Errored(fmt.Errorf("read transaction_read_only on %s: %w", c.Node, err))
		}
		values["read_only"] = readOnly
		if readOnly {
			observed += ", but read-only: a new transaction there cannot write"
		}
	}
	r := Failed(observed, wanted)
	if st.Role == c.Is && !readOnly {
		r.Status = Pass
	}
	r.Values = values
	return r
}
