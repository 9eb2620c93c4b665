package checks

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/transport"
)

func init() {
	Register(Definition{
		Kind: "pg.caught_up",
		Doc:  "a standby has replayed all the WAL of another node: its current position, or the shutdown checkpoint of a stopped primary",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true,
				Doc: "the standby that must have caught up"},
			{Name: "with", Type: params.Node, Required: true,
				Doc: "the node it must have caught up with, usually the primary"},
			{Name: "target", Type: params.String, Default: "current", Enum: []string{"current", "shutdown_checkpoint"},
				Doc: "current: with's WAL position now (pg_current_wal_lsn(), or its replay position if it is a standby); " +
					"shutdown_checkpoint: with is stopped and node replayed past its shutdown checkpoint, " +
					"from the fact <with>.shutdown_lsn or else pg_controldata on with's host"},
		},
		New: newPGCaughtUp,
	})
}

// The positions pg.caught_up compares a standby's replay with.
const (
	catchUpCurrent            = "current"
	catchUpShutdownCheckpoint = "shutdown_checkpoint"
)

// PGCaughtUp passes when a standby has replayed everything another node
// wrote. With target shutdown_checkpoint it is the guarantee of a clean
// switchover: the old primary stopped, and the candidate replayed past its
// shutdown checkpoint, so no commit acknowledged by the old primary is
// missing on the candidate. It evaluates once; a runbook waits with within:.
type PGCaughtUp struct {
	Node   string
	With   string
	Target string // catchUpCurrent or catchUpShutdownCheckpoint
}

var (
	_ Check        = (*PGCaughtUp)(nil)
	_ RemotePoller = (*PGCaughtUp)(nil)
)

func newPGCaughtUp(v params.Values) (Check, error) {
	c := &PGCaughtUp{
		Node:   v.Node("node"),
		With:   v.Node("with"),
		Target: v.String("target"),
	}
	if c.Target == "" {
		c.Target = catchUpCurrent
	}
	switch {
	case c.Node == "":
		return nil, errors.New("node is empty")
	case c.With == "":
		return nil, errors.New("with is empty")
	case c.Node == c.With:
		return nil, fmt.Errorf("node and with are both %s: name the standby and the node it follows", c.Node)
	case c.Target != catchUpCurrent && c.Target != catchUpShutdownCheckpoint:
		return nil, fmt.Errorf("target %q: want current or shutdown_checkpoint", c.Target)
	}
	return c, nil
}

// Describe implements Check.
func (c *PGCaughtUp) Describe(*cluster.Target) string {
	if c.Target == catchUpShutdownCheckpoint {
		return fmt.Sprintf("%s is shut down and %s replayed past its shutdown checkpoint", c.With, c.Node)
	}
	return fmt.Sprintf("%s replayed up to %s's current WAL position", c.Node, c.With)
}

// ShutdownLSNFact is the fact that holds a stopped node's shutdown
// checkpoint LSN, as the step that stopped it learnt it.
func ShutdownLSNFact(node string) string { return node + ".shutdown_lsn" }

// Run implements Check.
func (c *PGCaughtUp) Run(ctx context.Context, t *cluster.Target) Result {
	return withWanted(c.run(ctx, t, nil), c, t)
}

// PollRemote implements RemotePoller: with target shutdown_checkpoint and
// no fact to read the checkpoint from, pg_controldata runs again on with's
// host until it says the cluster is shut down.
func (c *PGCaughtUp) PollRemote(ctx context.Context, t *cluster.Target, p Poll) Result {
	return withWanted(c.run(ctx, t, &p), c, t)
}

// run evaluates the check once (with p, polling its host's control file);
// Run fills in what it wanted when it ended in an error before saying so.
func (c *PGCaughtUp) run(ctx context.Context, t *cluster.Target, p *Poll) Result {
	if c.Target == catchUpShutdownCheckpoint {
		return c.runShutdownCheckpoint(ctx, t, p)
	}
	return c.runCurrent(ctx, t)
}

// runCurrent reads with's position first and the standby's after, so a
// standby that catches up in between passes.
func (c *PGCaughtUp) runCurrent(ctx context.Context, t *cluster.Target) Result {
	if _, err := t.Node(c.Node); err != nil {
		return Errored(err)
	}
	wst, err := inspectNode(ctx, t, c.With)
	if err != nil {
		return Errored(err)
	}
	goal, what := wst.CurrentLSN, "current WAL position"
	if wst.Role == pg.RoleStandby {
		goal, what = wst.ReplayLSN, "replay position (it is a standby)"
	}
	wanted := fmt.Sprintf("%s replayed up to at least %s, %s's %s", c.Node, goal, c.With, what)

	nst, res, ok := c.inspectStandby(ctx, t, wanted)
	if !ok {
		return res
	}
	behind := max(int64(goal)-int64(nst.ReplayLSN), 0)
	r := Result{Status: Fail, Wanted: wanted}
	if nst.ReplayLSN >= goal {
		r.Status = Pass
		r.Observed = fmt.Sprintf("%s replayed %s, %s at %s: caught up (received up to %s)",
			c.Node, nst.ReplayLSN, c.With, goal, nst.ReceiveLSN)
	} else {
		r.Observed = fmt.Sprintf("%s replayed %s, %s at %s: %d bytes behind (received up to %s%s)",
			c.Node, nst.ReplayLSN, c.With, goal, behind, nst.ReceiveLSN, pausedNote(nst))
	}
	r.Values = map[string]any{
		"replay_lsn":    nst.ReplayLSN.String(),
		"receive_lsn":   nst.ReceiveLSN.String(),
		"target_lsn":    goal.String(),
		"bytes_behind":  behind,
		"replay_paused": nst.ReplayPause,
	}
	return r
}

// runShutdownCheckpoint compares the standby's replay with the stopped
// node's shutdown checkpoint. Replay must be past the checkpoint's LSN: the
// record starts there, so only a replay position beyond it means the
// record itself was replayed.
func (c *PGCaughtUp) runShutdownCheckpoint(ctx context.Context, t *cluster.Target, p *Poll) Result {
	if _, err := t.Node(c.Node); err != nil {
		return Errored(err)
	}
	ckpt, source, res, ok := c.shutdownLSN(ctx, t, p)
	if !ok {
		return res
	}
	wanted := fmt.Sprintf("%s replayed past %s, the shutdown checkpoint of %s", c.Node, ckpt, c.With)
	nst, res, ok := c.inspectStandby(ctx, t, wanted)
	if !ok {
		return res
	}
	r := Result{Status: Fail, Wanted: wanted}
	if nst.ReplayLSN > ckpt {
		r.Status = Pass
		r.Observed = fmt.Sprintf("%s replayed %s, past the shutdown checkpoint of %s at %s (from %s); received up to %s",
			c.Node, nst.ReplayLSN, c.With, ckpt, source, nst.ReceiveLSN)
	} else {
		behind := int64(ckpt) - int64(nst.ReplayLSN)
		r.Observed = fmt.Sprintf("%s replayed %s, shutdown checkpoint of %s at %s: %d bytes behind (from %s; received up to %s%s)",
			c.Node, nst.ReplayLSN, c.With, ckpt, behind, source, nst.ReceiveLSN, pausedNote(nst))
		if behind == 0 {
			r.Observed = fmt.Sprintf("%s replayed %s, shutdown checkpoint of %s at %s: the checkpoint record itself is not replayed yet (from %s; received up to %s%s)",
				c.Node, nst.ReplayLSN, c.With, ckpt, source, nst.ReceiveLSN, pausedNote(nst))
		}
	}
	r.Values = map[string]any{
		"replay_lsn":        nst.ReplayLSN.String(),
		"receive_lsn":       nst.ReceiveLSN.String(),
		"shutdown_lsn":      ckpt.String(),
		"shutdown_lsn_from": source,
		"replay_paused":     nst.ReplayPause,
	}
	return r
}

// inspectStandby connects to the standby and asks it its replay position
// (pg.InspectReplay: it is polled every millisecond inside the window). ok
// is false when the check ends here, with res saying why.
func (c *PGCaughtUp) inspectStandby(ctx context.Context, t *cluster.Target, wanted string) (st pg.State, res Result, ok bool) {
	st, err := inspectNodeWith(ctx, t, c.Node, pg.InspectReplay)
	if err != nil {
		return st, Errored(err), false
	}
	if st.Role != pg.RoleStandby {
		return st, notAStandby(c.Node, st, wanted), false
	}
	return st, Result{}, true
}

// shutdownLSN finds with's shutdown checkpoint LSN: the fact, when a step
// recorded it, or else pg_controldata on with's host, which must say the
// cluster was shut down cleanly. source says where it came from.
func (c *PGCaughtUp) shutdownLSN(ctx context.Context, t *cluster.Target, p *Poll) (lsn pg.LSN, source string, res Result, ok bool) {
	key := ShutdownLSNFact(c.With)
	if t != nil && t.Facts != nil {
		if v, found := t.Facts.Get(key); found {
			lsn, err := pg.ParseLSN(v)
			if err != nil {
				return 0, "", Errored(fmt.Errorf("fact %s: %w", key, err)), false
			}
			return lsn, "fact " + key, Result{}, true
		}
	}
	n, err := t.Node(c.With)
	if err != nil {
		return 0, "", Errored(err), false
	}
	if n.DataDir == "" {
		return 0, "", Errored(fmt.Errorf("%s: no fact %s and no data_dir in the inventory to run pg_controldata on", c.With, key)), false
	}
	ex, err := t.Executor(c.With)
	if err != nil {
		return 0, "", Errored(err), false
	}
	bin := "pg_controldata"
	if n.BinDir != "" {
		bin = filepath.Join(n.BinDir, bin)
	}
	cmd := fmt.Sprintf("LC_ALL=C %s -D %s", transport.ShellQuote(bin), transport.ShellQuote(n.DataDir))
	out, err := ex.Run(ctx, pollCommand(p, cmd, `[ "$rc" -eq 0 ] && grep -q -E '^Database cluster state: +shut down$' "$out"`))
	if err != nil {
		return 0, "", Errored(fmt.Errorf("%s on %s: %w", cmd, ex.Where(), err)), false
	}
	if out.ExitCode != 0 {
		r := Errored(fmt.Errorf("%s on %s exited %d: %s", cmd, ex.Where(), out.ExitCode,
			strings.ReplaceAll(tailLines(out.Combined(), 3, 300), "\n", " | ")))
		return 0, "", r, false
	}
	fields := pg.ParseControlData(out.Stdout)
	state, loc := fields["Database cluster state"], fields["Latest checkpoint location"]
	if state == "" || loc == "" {
		return 0, "", Errored(fmt.Errorf("%s on %s: no cluster state or latest checkpoint location in its output", cmd, ex.Where())), false
	}
	lsn, err = pg.ParseLSN(loc)
	if err != nil {
		return 0, "", Errored(fmt.Errorf("%s on %s: latest checkpoint location: %w", cmd, ex.Where(), err)), false
	}
	if state != "shut down" {
		r := Failed(fmt.Sprintf("%s is not shut down cleanly: pg_controldata says %q (latest checkpoint at %s)", c.With, state, lsn),
			fmt.Sprintf("%s shut down cleanly (pg_controldata: \"shut down\") and %s replayed past its shutdown checkpoint", c.With, c.Node))
		r.Values = map[string]any{"cluster_state": state, "checkpoint_lsn": lsn.String()}
		return 0, "", r, false
	}
	return lsn, "pg_controldata", Result{}, true
}

// pausedNote adds to a message that replay is paused, when it is.
func pausedNote(st pg.State) string {
	if st.ReplayPause {
		return "; replay is paused"
	}
	return ""
}
