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
		Kind: "pg.not_primary",
		Doc:  "a node is not a primary and cannot come back as one: it answers in recovery, or it is down and its control file says it never finished a promotion",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true,
				Doc: "inventory node to ask; when it does not answer, pg_controldata runs on its host (needs data_dir)"},
		},
		New: newPGNotPrimary,
	})
}

// PGNotPrimary passes when a node is not, and cannot become by merely being
// started, a primary. A rollback that starts the old primary again needs
// exactly that of the candidate, and it must be able to say so when the
// candidate is down: a down node cannot take writes, but if it had been
// promoted before it went down, it would come back as a second primary.
// So a node that does not answer passes only when its control file says it
// was in recovery ("in archive recovery", "shut down in recovery") and its
// data directory still holds standby.signal (or recovery.signal,
// recovery.conf); a control file that says "in production" or "shut down"
// means a promotion finished, and fails.
type PGNotPrimary struct {
	Node string
}

var (
	_ Check        = (*PGNotPrimary)(nil)
	_ RemotePoller = (*PGNotPrimary)(nil)
)

func newPGNotPrimary(v params.Values) (Check, error) {
	c := &PGNotPrimary{Node: v.Node("node")}
	if c.Node == "" {
		return nil, errors.New("node is empty")
	}
	return c, nil
}

// The pg_controldata states of a node that has not finished a promotion.
const (
	stateInArchiveRecovery  = "in archive recovery"
	stateShutDownInRecovery = "shut down in recovery"
)

// signalMark is what the check's command prints when a recovery signal
// file is in the data directory.
const signalMark = "switchover:recovery-signal"

// Describe implements Check.
func (c *PGNotPrimary) Describe(*cluster.Target) string {
	return fmt.Sprintf("%s is not a primary (in recovery, or down without having finished a promotion)", c.Node)
}

// Run implements Check.
func (c *PGNotPrimary) Run(ctx context.Context, t *cluster.Target) Result {
	return withWanted(c.run(ctx, t, nil), c, t)
}

// PollRemote implements RemotePoller: for a node that does not answer, its
// control file and signal files are read again on its host until they say
// it comes back as a standby.
func (c *PGNotPrimary) PollRemote(ctx context.Context, t *cluster.Target, p Poll) Result {
	return withWanted(c.run(ctx, t, &p), c, t)
}

func (c *PGNotPrimary) run(ctx context.Context, t *cluster.Target, p *Poll) Result {
	wanted := c.Describe(t)
	st, err := inspectNode(ctx, t, c.Node)
	if err == nil {
		if st.Role == pg.RolePrimary {
			return notAStandby(c.Node, st, wanted)
		}
		r := Passed(fmt.Sprintf("%s is a standby (in recovery) on timeline %d, replayed %s", c.Node, st.Timeline, st.ReplayLSN))
		r.Wanted = wanted
		r.Values = map[string]any{"role": string(st.Role), "timeline": st.Timeline, "replay_lsn": st.ReplayLSN.String()}
		return r
	}
	var cerr *connectError
	if !errors.As(err, &cerr) {
		// It answered but could not say what it is: nothing to conclude.
		return Errored(err)
	}
	return c.fromControlFile(ctx, t, err, wanted, p)
}

// fromControlFile decides for a node that does not answer, from its
// control file and its recovery signal files.
func (c *PGNotPrimary) fromControlFile(ctx context.Context, t *cluster.Target, connErr error, wanted string, p *Poll) Result {
	n, err := t.Node(c.Node)
	if err != nil {
		return Errored(err)
	}
	if n.DataDir == "" {
		return Errored(fmt.Errorf("%v; no data_dir in the inventory to read its control file", connErr))
	}
	ex, err := t.Executor(c.Node)
	if err != nil {
		return Errored(fmt.Errorf("%v; %w", connErr, err))
	}
	bin := "pg_controldata"
	if n.BinDir != "" {
		bin = filepath.Join(n.BinDir, bin)
	}
	dir := transport.ShellQuote(n.DataDir)
	cmd := fmt.Sprintf("LC_ALL=C %s -D %s && for f in standby.signal recovery.signal recovery.conf; do if [ -e %s/$f ]; then echo %s $f; fi; done",
		transport.ShellQuote(bin), dir, dir, signalMark)
	// Polled, the reading is done when it would pass: a state in recovery
	// and a signal file.
	done := fmt.Sprintf(`[ "$rc" -eq 0 ] && grep -q -E '^Database cluster state: +(%s|%s)$' "$out" && grep -q '^%s ' "$out"`,
		stateInArchiveRecovery, stateShutDownInRecovery, signalMark)
	out, err := ex.Run(ctx, pollCommand(p, cmd, done))
	if err != nil {
		return Errored(fmt.Errorf("%v; pg_controldata on %s: %w", connErr, ex.Where(), err))
	}
	if out.ExitCode != 0 {
		return Errored(fmt.Errorf("%v; pg_controldata on %s exited %d: %s", connErr, ex.Where(), out.ExitCode,
			strings.ReplaceAll(tailLines(out.Combined(), 3, 300), "\n", " | ")))
	}
	state := pg.ParseControlData(out.Stdout)["Database cluster state"]
	if state == "" {
		return Errored(fmt.Errorf("%v; pg_controldata on %s printed no cluster state", connErr, ex.Where()))
	}
	var signal string
	for _, l := range strings.Split(out.Stdout, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), signalMark+" "); ok {
			signal = rest
			break
		}
	}
	values := map[string]any{"answers": false, "cluster_state": state, "recovery_signal": signal}
	observed := fmt.Sprintf("%s does not answer (%v); pg_controldata says %q", c.Node, connErr, state)
	var r Result
	switch {
	case state != stateInArchiveRecovery && state != stateShutDownInRecovery:
		r = Failed(observed+": it finished a promotion or ran as a primary, and would come back as one", wanted)
	case signal == "":
		r = Failed(observed+", but no standby.signal is in its data directory: started, it would come back as a primary", wanted)
	default:
		r = Passed(fmt.Sprintf("%s, and %s is in its data directory: it never finished a promotion and comes back as a standby", observed, signal))
		r.Wanted = wanted
	}
	r.Values = values
	return r
}
