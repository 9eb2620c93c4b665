package steps

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/transport"
)

func init() {
	Register(Definition{
		Kind: "pg.rewind",
		Doc:  "rewinds a stopped old primary onto another node's timeline with pg_rewind",
		// What the old primary wrote after the histories diverged is
		// thrown away for good.
		Destructive: true,
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: "the stopped node to rewind, usually the old primary"},
			{Name: "source", Type: params.Node, Required: true, Doc: "the running node whose history wins, usually the new primary; reached with its inventory conninfo"},
			{Name: "keep_config", Type: params.Strings,
				Doc: "files of the node's data directory to keep as they were, since pg_rewind copies the source's; default " +
					strings.Join(defaultKeepConfig, ", ") + "; [] keeps none"},
		},
		New: func(v params.Values) (Step, error) {
			r := &PGRewind{Node: v.Node("node"), Source: v.Node("source"), Keep: defaultKeepConfig}
			if r.Node == r.Source {
				return nil, fmt.Errorf("node %q cannot be rewound from itself", r.Node)
			}
			if v.Has("keep_config") {
				r.Keep = nil
				for _, f := range v.Strings("keep_config") {
					f = strings.TrimSpace(f)
					if f == "" || f == "." || f == ".." || strings.Contains(f, "/") {
						return nil, fmt.Errorf("keep_config %q: want a file name in the data directory, without a /", f)
					}
					r.Keep = append(r.Keep, f)
				}
			}
			return r, nil
		},
	})
}

// defaultKeepConfig are the configuration files a rewind keeps: pg_rewind
// copies the source's over them, and they hold what is the node's own (its
// port, its listen address, its access rules).
var defaultKeepConfig = []string{"postgresql.conf", "postgresql.auto.conf", "pg_hba.conf", "pg_ident.conf"}

// PGRewind is a step that brings a stopped old primary back onto the new
// primary's history when their timelines diverged, so that it can follow
// it; when they did not diverge, pg_rewind changes nothing and says so.
// The node's own configuration files in its data directory are copied
// aside first and put back after, since pg_rewind would leave it with the
// source's.
type PGRewind struct {
	Node   string
	Source string
	Keep   []string // configuration files to keep, by name in the data directory
}

var _ Step = (*PGRewind)(nil)

// command is the pg_rewind command line. Its source is the source's
// inventory conninfo resolved to server, user, database and TLS settings,
// never with a password: pg_rewind runs as the node's OS user, who
// authenticates with its own ~/.pgpass (or a passfile).
func (r *PGRewind) command(t *cluster.Target) string {
	n, _ := t.Node(r.Node)
	source := fmt.Sprintf("<conninfo of %s>", r.Source)
	if s, err := nodeConninfo(t, r.Source); err == nil {
		s.ApplicationName = ""
		source = s.String()
	}
	rewind := fmt.Sprintf("LC_ALL=C %s -D %s --source-server=%s", transport.ShellQuote(binPath(n, "pg_rewind")), transport.ShellQuote(dataDir(n)), transport.ShellQuote(source))
	if len(r.Keep) == 0 {
		return rewind
	}
	files := make([]string, len(r.Keep))
	for i, f := range r.Keep {
		files[i] = transport.ShellQuote(f)
	}
	dd := transport.ShellQuote(dataDir(n))
	// The copies go outside the data directory: pg_rewind removes there
	// what the source does not have.
	return fmt.Sprintf(`keep=$(mktemp -d) || exit 1; for f in %s; do if [ -f %s/"$f" ]; then cp -p %s/"$f" "$keep"/ || { rm -rf "$keep"; exit 1; }; fi; done; `+
		`%s; rc=$?; for f in "$keep"/*; do if [ -f "$f" ]; then cp -p "$f" %s/ && echo "kept the node's own ${f##*/}" || rc=1; fi; done; rm -rf "$keep"; exit $rc`,
		strings.Join(files, " "), dd, dd, rewind, dd)
}

// Describe implements Step.
func (r *PGRewind) Describe(t *cluster.Target) Effect {
	return Effect{Node: nodeWhere(t, r.Node),
		Command: fmt.Sprintf("on %s: %s\non %s: %s", r.Source, checkpointSQL, r.Node, r.command(t)),
		Changes: fmt.Sprintf("a checkpoint on %s, so that its control file shows its current timeline; then the blocks of %s's data directory that changed after its history diverged from %s's are overwritten with %s's copies (its own %s are kept); %s must be stopped; nothing changes when they did not diverge",
			r.Source, r.Node, r.Source, r.Source, keepList(r.Keep), r.Node)}
}

func keepList(files []string) string {
	if len(files) == 0 {
		return "configuration files are NOT kept: it gets the source's"
	}
	return strings.Join(files, ", ")
}

// Apply implements Step.
func (r *PGRewind) Apply(ctx context.Context, t *cluster.Target) error {
	fail := func(err error) error { return fmt.Errorf("rewind %q from %q: %w", r.Node, r.Source, err) }
	n, ex, err := hostNode(t, r.Node)
	if err != nil {
		return fail(err)
	}
	src, err := t.Node(r.Source)
	if err != nil {
		return fail(err)
	}
	if _, err := nodeConninfo(t, r.Source); err != nil {
		return fail(err)
	}
	running, err := serverRunning(ctx, ex, n)
	if err != nil {
		return fail(err)
	}
	if running {
		// A postmaster still ending after its shutdown checkpoint (pg.stop
		// done at the checkpoint) is waited for, or ended.
		if running, err = stillRunning(ctx, t, ex, n); err != nil {
			return fail(err)
		}
	}
	if running {
		return fail(errors.New(r.Node + " is running: stop it first (pg.stop); nothing done"))
	}
	// Right after a promotion the source's control file still names the
	// old timeline until a checkpoint: pg_rewind would then see one
	// timeline and wrongly find nothing to rewind.
	if err := checkpointSource(ctx, src); err != nil {
		return fail(err)
	}
	t.Print(fmt.Sprintf("checkpoint on %s done, so that pg_rewind reads its current timeline", r.Source))
	// The error names the program, never the command line: it holds the
	// source's conninfo.
	out, err := run(ctx, ex, "pg_rewind", r.command(t))
	printOutput(t, out)
	if err != nil {
		return fail(err)
	}
	if strings.Contains(out.Combined(), "no rewind required") {
		t.Print(fmt.Sprintf("%s and %s did not diverge: no rewind required, nothing changed", r.Node, r.Source))
		return nil
	}
	t.Print(fmt.Sprintf("%s rewound onto %s's timeline; it must start as a standby of %s next (pg.follow)", r.Node, r.Source, r.Source))
	return nil
}

// checkpointSource runs CHECKPOINT on the source of a rewind.
func checkpointSource(ctx context.Context, src *cluster.Node) error {
	conn, err := connectNode(ctx, nil, src, remaining(ctx))
	if err != nil {
		return err
	}
	defer closeConn(conn)
	if _, err := conn.Exec(ctx, checkpointSQL); err != nil {
		return fmt.Errorf("checkpoint on %q: %w", src.Name, err)
	}
	return nil
}
