package checks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
)

func init() {
	Register(Definition{
		Kind: "pg.replication",
		Doc:  "a standby streams from its upstream with lag under a bound",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true,
				Doc: "the standby"},
			{Name: "upstream", Type: params.Node, Required: true,
				Doc: "the node it must stream from (the primary, or a standby for cascading replication)"},
			{Name: "max_lag_bytes", Type: params.Bytes, Default: "16MB",
				Doc: "most WAL the standby's replay may be behind the upstream's position"},
			{Name: "max_lag_seconds", Type: params.Duration, Default: "30s",
				Doc: "most replay lag the upstream reports for the standby (pg_stat_replication.replay_lag); not failed on when unknown"},
		},
		New: newPGReplication,
	})
}

// PGReplication passes when a standby's WAL receiver streams from the
// expected upstream and its replay is close behind. It is the precondition
// that the candidate of a switchover is really following the primary: a
// standby that lost its link, or follows another node, would promote with
// old data.
type PGReplication struct {
	Node          string
	Upstream      string
	MaxLagBytes   int64
	MaxLagSeconds time.Duration
}

var _ Check = (*PGReplication)(nil)

func newPGReplication(v params.Values) (Check, error) {
	c := &PGReplication{
		Node:          v.Node("node"),
		Upstream:      v.Node("upstream"),
		MaxLagBytes:   v.Int("max_lag_bytes"),
		MaxLagSeconds: v.Duration("max_lag_seconds"),
	}
	switch {
	case c.Node == "":
		return nil, errors.New("node is empty")
	case c.Upstream == "":
		return nil, errors.New("upstream is empty")
	case c.Node == c.Upstream:
		return nil, fmt.Errorf("node and upstream are both %s: a node cannot stream from itself", c.Node)
	}
	return c, nil
}

// Describe implements Check.
func (c *PGReplication) Describe(*cluster.Target) string {
	return fmt.Sprintf("%s is a standby streaming from %s, replay at most %s and %s behind",
		c.Node, c.Upstream, params.FormatBytes(c.MaxLagBytes), c.MaxLagSeconds)
}

// Run implements Check.
func (c *PGReplication) Run(ctx context.Context, t *cluster.Target) Result {
	return withWanted(c.run(ctx, t), c, t)
}

// run evaluates the check once; Run fills in what it wanted when it
// ended in an error before saying so. It reads the standby before the
// upstream, so the byte lag it reports is never smaller than the real one.
func (c *PGReplication) run(ctx context.Context, t *cluster.Target) Result {
	up, err := t.Node(c.Upstream)
	if err != nil {
		return Errored(err)
	}
	upEndpoints, err := conninfoEndpoints(up.Conninfo)
	if err != nil {
		return Errored(fmt.Errorf("upstream %s: %w", c.Upstream, err))
	}
	wanted := fmt.Sprintf("%s streaming from %s (%s), replay at most %s and %s behind",
		c.Node, c.Upstream, strings.Join(upEndpoints, ", "), byteLimit(c.MaxLagBytes), c.MaxLagSeconds)

	sconn, err := connectNode(ctx, t, c.Node)
	if err != nil {
		return Errored(err)
	}
	defer closeConn(sconn)
	st, err := pg.Inspect(ctx, sconn)
	if err != nil {
		return Errored(fmt.Errorf("inspect %s: %w", c.Node, err))
	}
	if st.Role != pg.RoleStandby {
		return notAStandby(c.Node, st, wanted)
	}
	rcv, err := readWALReceiver(ctx, sconn)
	if err != nil {
		return Errored(fmt.Errorf("%s: %w", c.Node, err))
	}

	uconn, err := connectNode(ctx, t, c.Upstream)
	if err != nil {
		return Errored(err)
	}
	defer closeConn(uconn)
	ust, err := pg.Inspect(ctx, uconn)
	if err != nil {
		return Errored(fmt.Errorf("inspect %s: %w", c.Upstream, err))
	}
	upLSN, upWhat := ust.CurrentLSN, "current WAL position"
	if ust.Role == pg.RoleStandby {
		upLSN, upWhat = ust.ReplayLSN, "replay position (it is a standby)"
	}
	lagBytes := max(int64(upLSN)-int64(st.ReplayLSN), 0)
	lagSecs, lagKnown, lagNote, err := replayLag(ctx, uconn, c.Node)
	if err != nil {
		return Errored(fmt.Errorf("%s: %w", c.Upstream, err))
	}

	var seen, problems []string
	switch {
	case !rcv.Streaming():
		seen = append(seen, fmt.Sprintf("%s: %s", c.Node, rcv))
		problems = append(problems, fmt.Sprintf("%s is not streaming", c.Node))
	case !matchesEndpoint(ctx, rcv.Sender(), upEndpoints):
		seen = append(seen, fmt.Sprintf("%s streams from %s, not from %s (%s)", c.Node, rcv.Sender(), c.Upstream, strings.Join(upEndpoints, ", ")))
		problems = append(problems, fmt.Sprintf("%s streams from another server", c.Node))
	default:
		seen = append(seen, fmt.Sprintf("%s streams from %s (%s)", c.Node, c.Upstream, rcv.Sender()))
	}
	seen = append(seen, fmt.Sprintf("replayed %s, %s's %s %s: %d bytes behind", st.ReplayLSN, c.Upstream, upWhat, upLSN, lagBytes))
	if lagBytes > c.MaxLagBytes {
		problems = append(problems, fmt.Sprintf("%d bytes behind, over %s", lagBytes, byteLimit(c.MaxLagBytes)))
	}
	if lagKnown {
		seen = append(seen, fmt.Sprintf("replay lag %s (%s's pg_stat_replication)", roundDuration(lagSecs), c.Upstream))
		if lagSecs > c.MaxLagSeconds {
			problems = append(problems, fmt.Sprintf("replay lag %s, over %s", roundDuration(lagSecs), c.MaxLagSeconds))
		}
	} else {
		seen = append(seen, "lag in seconds unknown: "+lagNote)
	}

	r := Result{Status: Pass, Observed: strings.Join(seen, "; "), Wanted: wanted}
	if len(problems) > 0 {
		r.Status = Fail
		r.Detail = strings.Join(problems, "\n")
	}
	r.Values = map[string]any{
		"streaming":       rcv.Streaming(),
		"receiver":        rcv.Status,
		"sender":          rcv.Sender(),
		"upstream":        upEndpoints[0],
		"replay_lsn":      st.ReplayLSN.String(),
		"receive_lsn":     st.ReceiveLSN.String(),
		"upstream_lsn":    upLSN.String(),
		"lag_bytes":       lagBytes,
		"lag_seconds":     nil,
		"max_lag_bytes":   c.MaxLagBytes,
		"max_lag_seconds": c.MaxLagSeconds.Seconds(),
	}
	if lagKnown {
		r.Values["lag_seconds"] = lagSecs.Seconds()
	}
	return r
}

// replayLag reads the replay lag the upstream reports for the standby
// whose application_name is node. known is false, with a note saying why,
// when there is no such row or the server reports no lag.
func replayLag(ctx context.Context, q pg.Querier, node string) (lag time.Duration, known bool, note string, err error) {
	var secs *float64
	err = q.QueryRow(ctx, `SELECT extract(epoch FROM replay_lag)::float8 FROM pg_stat_replication
		WHERE application_name = $1 ORDER BY backend_start DESC LIMIT 1`, node).Scan(&secs)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, fmt.Sprintf("no pg_stat_replication row with application_name %s", node), nil
	}
	if err != nil {
		return 0, false, "", fmt.Errorf("read pg_stat_replication: %w", err)
	}
	if secs == nil {
		return 0, false, "no replay_lag reported (no WAL replayed recently)", nil
	}
	return time.Duration(*secs * float64(time.Second)), true, "", nil
}

// byteLimit renders a byte bound for a wanted line: "16777216 bytes (16MB)",
// or just "184 bytes" when it has no shorter form.
func byteLimit(n int64) string {
	short := params.FormatBytes(n)
	if strings.HasSuffix(short, "byte") || strings.HasSuffix(short, "bytes") {
		return short
	}
	return fmt.Sprintf("%d bytes (%s)", n, short)
}
