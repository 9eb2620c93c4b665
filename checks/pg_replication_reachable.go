package checks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/transport"
)

func init() {
	Register(Definition{
		Kind: "pg.replication_reachable",
		Doc:  "every node that will follow the candidate opens a replication connection to it from its own host, with the primary_conninfo pg.follow would give it (psql, IDENTIFY_SYSTEM), and reaches the same cluster",
		Params: []params.Spec{
			{Name: "upstream", Type: params.Node, Required: true, Doc: "the node the others will stream from: the candidate"},
			{Name: "except", Type: params.Nodes, Doc: "nodes that will not follow it (their replication is another tool's)"},
		},
		New: func(v params.Values) (Check, error) {
			c := &ReplicationReachable{Upstream: v.Node("upstream"), Except: v.Nodes("except")}
			if c.Upstream == "" {
				return nil, errors.New("upstream is empty")
			}
			return c, nil
		},
	})
}

// ReplicationReachable passes when every other node of the cluster (the
// old primary included) can open a replication connection to Upstream
// from its own host, as its WAL receiver will once it follows: the same
// conninfo (cluster.Node.FollowConninfo), the same OS user and so the
// same ~/.pgpass, the same network path. A candidate whose pg_hba.conf
// rejects replication connections streams from the primary without a
// sign of it; promoted, it would be left with no standby, and the old
// primary with no way back. The system identifier it answers must be the
// cluster's.
type ReplicationReachable struct {
	Upstream string
	Except   []string
}

var _ Check = (*ReplicationReachable)(nil)

// follower is one node that will follow Upstream, and how to try it.
type follower struct {
	name     string
	ex       transport.Executor
	err      error
	conninfo string
	command  string
}

func (c *ReplicationReachable) followers(t *cluster.Target) ([]follower, error) {
	if t == nil || t.Cluster == nil {
		return nil, errors.New("no inventory given")
	}
	up, err := t.Node(c.Upstream)
	if err != nil {
		return nil, err
	}
	var out []follower
	for _, name := range t.Cluster.NodeOrder() {
		if name == c.Upstream || slices.Contains(c.Except, name) {
			continue
		}
		n := t.Cluster.Nodes[name]
		f := follower{name: name}
		f.conninfo, f.err = up.FollowConninfo(name)
		if f.err == nil {
			f.ex, f.err = t.Cluster.Executor(name)
		}
		binDir := ""
		if n != nil {
			binDir = n.BinDir
		}
		f.command = pg.ReplicationProbe(binDir, f.conninfo)
		out = append(out, f)
	}
	return out, nil
}

// Describe implements Check.
func (c *ReplicationReachable) Describe(t *cluster.Target) string {
	fs, err := c.followers(t)
	if err != nil {
		return fmt.Sprintf("every node that will follow %s opens a replication connection to it from its own host (%v)", c.Upstream, err)
	}
	if len(fs) == 0 {
		return fmt.Sprintf("every node that will follow %s opens a replication connection to it from its own host (none will)", c.Upstream)
	}
	parts := make([]string, len(fs))
	for i, f := range fs {
		where := "?"
		if f.ex != nil {
			where = f.ex.Where()
		}
		parts[i] = fmt.Sprintf("%s on %s: %s", f.name, where, f.command)
		if f.err != nil {
			parts[i] = fmt.Sprintf("%s: %v", f.name, f.err)
		}
	}
	return fmt.Sprintf("every node that will follow %s opens a replication connection to it from its own host, as its primary_conninfo will, and reaches the same cluster: %s",
		c.Upstream, strings.Join(parts, "; "))
}

// Run implements Check. The followers are tried all at once.
func (c *ReplicationReachable) Run(ctx context.Context, t *cluster.Target) Result {
	fs, err := c.followers(t)
	if err != nil {
		return Errored(err)
	}
	if len(fs) == 0 {
		return Passed(fmt.Sprintf("no other node will follow %s", c.Upstream))
	}
	sysids := make([]string, len(fs))
	problems := make([]string, len(fs))
	var wg sync.WaitGroup
	for i, f := range fs {
		if f.err != nil {
			problems[i] = f.err.Error()
			continue
		}
		wg.Go(func() {
			out, err := f.ex.Run(ctx, "LC_ALL=C; export LC_ALL; "+f.command)
			switch {
			case err != nil:
				problems[i] = loginProblem(err)
			case out.ExitCode != 0:
				problems[i] = strings.ReplaceAll(tailLines(strings.TrimSpace(out.Combined()), 3, 400), "\n", " | ")
				if problems[i] == "" {
					problems[i] = fmt.Sprintf("psql exited %d", out.ExitCode)
				}
			default:
				sysids[i], _, _ = strings.Cut(strings.TrimSpace(out.Stdout), "|")
			}
		})
	}
	wg.Wait()
	// The candidate's own answer, over an ordinary connection: the one the
	// followers reach must be it.
	want := ""
	if conn, err := connectNode(ctx, t, c.Upstream); err == nil {
		_ = conn.QueryRow(ctx, "SELECT system_identifier::text FROM pg_control_system()").Scan(&want)
		closeConn(conn)
	}
	var bad, good []string
	values := map[string]any{}
	for i, f := range fs {
		where := f.name
		if f.ex != nil {
			where = fmt.Sprintf("%s (%s)", f.name, f.ex.Where())
		}
		switch {
		case problems[i] != "":
			bad = append(bad, fmt.Sprintf("%s cannot open a replication connection to %s: %s", where, c.Upstream, problems[i]))
			values[f.name] = problems[i]
		case want != "" && sysids[i] != want:
			bad = append(bad, fmt.Sprintf("%s reaches a server of another cluster (system identifier %s, %s's is %s) with the conninfo for %s", where, sysids[i], c.Upstream, want, c.Upstream))
			values[f.name] = "other cluster " + sysids[i]
		case i > 0 && sysids[0] != "" && sysids[i] != sysids[0]:
			bad = append(bad, fmt.Sprintf("%s reaches system identifier %s, %s reaches %s, with the conninfo for %s", where, sysids[i], fs[0].name, sysids[0], c.Upstream))
			values[f.name] = "other cluster " + sysids[i]
		default:
			good = append(good, where)
			values[f.name] = "replication connection opened"
		}
	}
	if len(bad) > 0 {
		r := Failed(strings.Join(bad, " | ")+fmt.Sprintf(": promoted, %s would be left without those standbys; allow them in its pg_hba.conf (a host ... replication line) and reload", c.Upstream),
			fmt.Sprintf("every node that will follow %s opening a replication connection to it from its own host", c.Upstream))
		r.Values = values
		return r
	}
	r := Passed(fmt.Sprintf("replication connection to %s opened from %s (IDENTIFY_SYSTEM: system identifier %s)", c.Upstream, strings.Join(good, ", "), sysids[0]))
	r.Values = values
	return r
}
