package logical

import (
	"context"
	"fmt"
	"path"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/conninfo"
)

// Schemas are two databases' schemas as one pg_dump read them: the
// dumping node's (to's, the newer, since a pg_dump reads servers of its
// own version and older).
type Schemas struct {
	From, To Dump
	Diff     Difference
}

// ToolPath is one of PostgreSQL's programs on n's host: in its bin_dir,
// or found on the PATH when the inventory gives none.
func ToolPath(n *cluster.Node, program string) string {
	if n == nil || n.BinDir == "" {
		return program
	}
	return path.Join(n.BinDir, program)
}

// ToolConninfo is n's inventory conninfo as a tool on a host is given it:
// resolved to server, user, database and TLS settings, application_name
// switchover, never a password (the host's OS user has its own ~/.pgpass
// or passfile).
func ToolConninfo(n *cluster.Node) (string, error) {
	r, err := conninfo.Resolve(n.Conninfo)
	if err != nil {
		return "", fmt.Errorf("conninfo of %q: %w", n.Name, err)
	}
	r.ApplicationName = "switchover"
	return r.String(), nil
}

// DumpDescription says, for plans, how the schemas are dumped.
func DumpDescription(t *cluster.Target, from, to string) string {
	n, _ := t.Node(to)
	return fmt.Sprintf("on %s's host: %s %s -d <conninfo of %s>, and the same of %s", to, ToolPath(n, "pg_dump"), DumpOptions, from, to)
}

// DumpNode dumps node's schema with dumper's pg_dump, on dumper's host.
func DumpNode(ctx context.Context, t *cluster.Target, dumper, node string) (Dump, error) {
	d, err := t.Node(dumper)
	if err != nil {
		return Dump{}, err
	}
	n, err := t.Node(node)
	if err != nil {
		return Dump{}, err
	}
	ci, err := ToolConninfo(n)
	if err != nil {
		return Dump{}, err
	}
	ex, err := t.Executor(dumper)
	if err != nil {
		return Dump{}, err
	}
	text, err := FetchDump(ctx, ex, ToolPath(d, "pg_dump"), ci)
	if err != nil {
		return Dump{}, fmt.Errorf("dump the schema of %s: %w", node, err)
	}
	return ParseDump(text), nil
}

// CompareSchemas dumps from's and to's schemas with to's pg_dump on to's
// host and compares them.
func CompareSchemas(ctx context.Context, t *cluster.Target, from, to string) (Schemas, error) {
	var s Schemas
	var err error
	if s.From, err = DumpNode(ctx, t, to, from); err != nil {
		return s, err
	}
	if s.To, err = DumpNode(ctx, t, to, to); err != nil {
		return s, err
	}
	s.Diff = Compare(Normalize(s.From), Normalize(s.To), from, to)
	return s, nil
}
