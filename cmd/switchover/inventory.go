package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchover/switchover/internal/discover"
	"github.com/switchover/switchover/runbook/spec"
)

// inventoryDiscoverTimeout bounds a whole discovery by default.
const inventoryDiscoverTimeout = 2 * time.Minute

type inventoryDiscoverOpts struct {
	discover.Options
	out     string
	force   bool
	ports   string
	timeout time.Duration
}

func newInventoryCmd(io *streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "inventory",
		Short: "Write an inventory from the cluster itself",
		Args:  exactArgs(0, "a subcommand: discover"),
		RunE:  func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	cmd.AddCommand(newInventoryDiscoverCmd(io))
	return cmd
}

func newInventoryDiscoverCmd(io *streams) *cobra.Command {
	opts := &inventoryDiscoverOpts{}
	cmd := &cobra.Command{
		Use:   "discover --conninfo CONNINFO",
		Short: "Write the inventory of a running cluster, starting from one node",
		Long: `discover connects to one node of a cluster (--conninfo, primary or standby), finds every
other node as the cluster itself names it, and writes an inventory for the cluster as it is:
each node's name, connection string, data directory (SHOW data_directory: a superuser or
pg_read_all_settings) and bin directory, the pooler (--pgbouncer, its admin console) and the
manager. Without a manager the nodes are found through replication: a standby's
pg_stat_wal_receiver and primary_conninfo lead to the primary, the primary's
pg_stat_replication to each standby (its address; its port is tried among the ports the
cluster names and the ones next to them, or --ports). repmgr is found from its repmgr.nodes
table; Patroni from --patroni (a member's REST API), pg_auto_failover from --pgaf-monitor.

Every value the cluster could not say is followed by a comment "# guessed: why": check those
before a run. Passwords are never written: give them with PGPASSWORD, ~/.pgpass or a passfile;
one in a connection string is used to connect, left out, and said so. A node that does not
answer, a node of another cluster, or a port where no PostgreSQL answers is an error naming
where and what (exit 3), and nothing is written. The inventory goes to stdout, or to --out
FILE, which is never overwritten without --force.`,
		Example: `  switchover inventory discover --conninfo "host=10.0.0.1 user=postgres dbname=postgres" \
      --pgbouncer "host=10.0.0.9 port=6432 user=pgbouncer dbname=pgbouncer" \
      --ssh 'admin@{host}' --run-as postgres -o inventory.yaml
  switchover inventory discover --conninfo "host=10.0.0.2 user=postgres" --patroni http://10.0.0.2:8008`,
		Args: exactArgs(0, "no arguments (the node is given with --conninfo)"),
		RunE: func(c *cobra.Command, _ []string) error { return runInventoryDiscover(c.Context(), io, opts) },
	}
	f := cmd.Flags()
	f.StringVar(&opts.Conninfo, "conninfo", "", "connection string of any node of the cluster, primary or standby (no password: PGPASSWORD, ~/.pgpass or a passfile)")
	f.StringVar(&opts.PgBouncer, "pgbouncer", "", "connection string of the PgBouncer admin console in front, if any")
	f.StringVar(&opts.Patroni, "patroni", "", "`URL` of a Patroni member's REST API, when Patroni runs the cluster")
	f.StringVar(&opts.PgafMonitor, "pgaf-monitor", "", "connection string of the pg_auto_failover monitor, when one runs the cluster")
	f.StringVar(&opts.Cluster, "cluster", "", "the cluster's name in the inventory (default: the servers' cluster_name, else guessed)")
	f.StringVar(&opts.SSH, "ssh", "", "reach each host over ssh at this address `PATTERN`: {host} is the node's address, {name} its name (e.g. 'admin@{host}'); default: commands run on this machine")
	f.StringVar(&opts.SSHConfig, "ssh-config", "", "ssh client configuration `FILE` the inventory's ssh hosts use")
	f.StringVar(&opts.RunAs, "run-as", "", "OS `USER` commands run as on each host (the servers' owner); default: over ssh the login user, locally the owner of the data directory")
	f.StringVar(&opts.ports, "ports", "", "ports to try for a standby whose port the cluster does not say, e.g. 5432,5433 or 6432-6440 (default: the ports the cluster names and the 10 next to each)")
	f.DurationVar(&opts.Timeout, "connect-timeout", discover.DefaultTimeout, "bound on each connection and question to one server")
	f.DurationVar(&opts.timeout, "timeout", inventoryDiscoverTimeout, "bound on the whole discovery")
	f.StringVarP(&opts.out, "out", "o", "", "write the inventory to `FILE` instead of stdout")
	f.BoolVar(&opts.force, "force", false, "overwrite --out FILE when it exists")
	return cmd
}

func runInventoryDiscover(ctx context.Context, io *streams, opts *inventoryDiscoverOpts) error {
	if opts.Conninfo == "" {
		return usagef("inventory discover: --conninfo is required: the connection string of any node of the cluster")
	}
	ports, err := parsePorts(opts.ports)
	if err != nil {
		return usagef("--ports %q: %v", opts.ports, err)
	}
	opts.Ports = ports
	if opts.out != "" && !opts.force {
		if _, err := os.Lstat(opts.out); err == nil {
			return usagef("--out %s: the file exists; give --force to overwrite it", opts.out)
		}
	}
	if opts.timeout <= 0 {
		opts.timeout = inventoryDiscoverTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, opts.timeout)
	defer cancel()
	o := opts.Options
	o.Note = func(msg string) { fmt.Fprintf(maskingWriter{io.err}, "note: %s\n", msg) }
	inv, err := discover.Discover(ctx, o)
	if err != nil {
		if errors.Is(err, discover.ErrOptions) {
			return usagef("inventory discover: %v", err)
		}
		if ctx.Err() != nil {
			return refusef("inventory discover: not done within %s (--timeout): %v; nothing written", opts.timeout, err)
		}
		return refusef("inventory discover: %v; nothing written", err)
	}
	text := discover.Render(inv)
	// What is written must be what the loader reads: a discovery that
	// renders something else is this program's mistake, not the cluster's.
	if _, err := spec.LoadInventory("(discovered inventory)", text); err != nil {
		return fmt.Errorf("inventory discover: the inventory written would not load (nothing written): %w", err)
	}
	for _, n := range inv.Nodes {
		fmt.Fprintf(io.err, "found %s: %s\n", n.Name.Text, describeFound(n))
	}
	if opts.out == "" {
		_, err := io.out.Write(text)
		return err
	}
	if err := writeNew(opts.out, text, opts.force); err != nil {
		return fmt.Errorf("--out %s: %w", opts.out, err)
	}
	fmt.Fprintf(io.err, "inventory: %s\n", opts.out)
	return nil
}

// describeFound is one line per node for the operator: role and what was
// guessed.
func describeFound(n *discover.Node) string {
	s := string(n.Role)
	if n.Upstream != "" {
		s += " of " + n.Upstream
	}
	var guessed []string
	for _, g := range []struct {
		what string
		v    discover.Value
	}{{"name", n.Name}, {"data_dir", n.DataDir}, {"bin_dir", n.BinDir}} {
		if g.v.Guessed != "" {
			guessed = append(guessed, g.what)
		}
	}
	if n.Host.Guessed != "" {
		guessed = append(guessed, "host")
	}
	if len(guessed) > 0 {
		s += " (guessed: " + strings.Join(guessed, ", ") + ")"
	}
	return s
}

// writeNew writes text to path: a new file, or with force a replacement
// put in place whole (never a half-written inventory).
func writeNew(path string, text []byte, force bool) error {
	if !force {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			if errors.Is(err, os.ErrExist) {
				return errors.New("the file exists; give --force to overwrite it")
			}
			return err
		}
		if _, err := f.Write(text); err != nil {
			f.Close()
			os.Remove(path)
			return err
		}
		return f.Close()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(text); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// parsePorts reads "5432,5433,6432-6440".
func parsePorts(s string) ([]int, error) {
	var out []int
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a <= 0 || a > 65535 {
			return nil, fmt.Errorf("%q is not a port", lo)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a || b > 65535 {
				return nil, fmt.Errorf("%q is not a range of ports", part)
			}
			if b-a > 1000 {
				return nil, fmt.Errorf("%q: at most 1000 ports in a range", part)
			}
		}
		for p := a; p <= b; p++ {
			out = append(out, p)
		}
	}
	return out, nil
}
