package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/topology"
)

type sandboxOpts struct {
	dir      string
	portBase int
	standbys int
	pgBin    string
	runAs    string
	manager  string
	router   string
	hosts    bool
	poolers  int
	json     bool
	// green brings up a green server beside the cluster (blue/green).
	green       bool
	greenBinDir string
	// clusters > 0 brings up a fleet sandbox (sandbox_fleet.go).
	clusters    int
	standbysSet bool // --standbys was given: a fleet's clusters have 1 otherwise
}

func defaultSandboxDir() string { return filepath.Join(os.TempDir(), "switchover-sandbox") }

func newSandboxCmd(io *streams) *cobra.Command {
	opts := &sandboxOpts{}
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "A local rehearsal cluster: primary pg1, standbys pg2.., PgBouncer in front",
		Long: `sandbox brings up a PostgreSQL cluster on 127.0.0.1 to rehearse on: a primary pg1 and
streaming standbys pg2, pg3 (physical slots, wal_log_hints on), and a PgBouncer on
--port-base in front of the primary (database app, admin console for user postgres);
node i listens on port-base+i. Authentication is trust on 127.0.0.1 only: it is a
rehearsal cluster. 'up' writes DIR/inventory.yaml, which the shipped playbooks use
unchanged; 'down' stops exactly the sandbox's own processes, by PID, and removes DIR.

'up --hosts' puts each node and PgBouncer on a host of its own, as a DBA's bastion sees a
real cluster: a Linux network namespace per host with its own address on a private bridge
(a 10.213.N.0/24 this machine does not use), its own sshd and host key, and an inventory
that reaches every host over ssh (root with a key made for the sandbox, then sudo -n -u
postgres; DIR/ssh/ssh_config with strict host key checking against DIR/ssh/known_hosts)
and every server on its host's address. It needs root, iproute2, sudo and OpenSSH; 'down'
also removes the namespaces, links and bridge it made. With --manager patroni each member's
Patroni runs on its host too, its REST API on the host's address, and etcd listens on this
host's address on the bridge. With --manager repmgr each node's repmgrd runs on its host,
repmgr's conninfo on the host's address, and repmgr's own 'standby switchover' reaches the
other hosts over ssh as postgres (DIR/repmgr-ssh: a key that root's authorized keys restrict
to running commands as postgres). With --manager pg_auto_failover each
node's keeper runs on its host and the monitor listens on this host's address on the
bridge, as etcd does: outside the nodes, reached from each of them.

'up --router haproxy' puts HAProxy on --port-base instead of PgBouncer (mode tcp, database
app through it), run as the servers' user and stopped by PID: a backend 'postgres' with
every node, a runtime API socket at level admin in DIR/haproxy/admin.sock, and health
checks as a typical deployment has them (inter 3s fall 3 rise 2): with --manager patroni,
GET /primary on each member's REST API, so only the leader is up; without, a TCP check
that finds every node up, the standbys' servers disabled, so the runtime state alone
decides. The inventory gets a router: section instead of pooler:, and the canary writes
through HAProxy.

'up --green' also brings up green1, the target of a blue/green move (a major upgrade by
logical replication): an empty server of a cluster of its own (initdb only, databases
postgres and app, user postgres) on the port after the others, in DIR/green1, from
--green-bin-dir (another major version's binaries) or blue's. Every server then runs with
wal_level = logical and room for a forward and a reverse subscription; the inventory gets a
green: section. 'status' and 'down' take green1 with the rest.

'up --clusters N' brings up a fleet to rehearse fleet runs on: N small clusters c1..cN
(a primary, --standbys standbys, default 1, and a PgBouncer each), two at a time on two
cores, in DIR/c1..DIR/cN, each with its own inventory and cluster name, cluster cI on the
ten ports from port-base+10*(I-1) (PgBouncer, then pg1, pg2, ...). A port taken in any
cluster's range is refused before anything starts; a cluster that fails to come up takes
the others down with it, so a failed 'up' leaves nothing. DIR/fleet.yaml names the
clusters (dc labels alternating a/b, a canary wave, two at a time, one per dc) for
'switchover fleet plan'; DIR/fleet-sandbox.json lists the clusters and their processes,
and 'down' and 'status' on DIR take every cluster. --manager, --router, --hosts and
--poolers are not supported with --clusters yet.`,
		Args: exactArgs(0, "a subcommand: up, status, down or prereqs"),
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	cmd.PersistentFlags().StringVar(&opts.dir, "dir", defaultSandboxDir(), "the sandbox's directory")
	up := &cobra.Command{
		Use:   "up",
		Short: "Create and start the sandbox",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			if c.Flags().Changed("clusters") {
				if opts.green {
					return usagef("sandbox up: --green is not supported with --clusters yet")
				}
				opts.standbysSet = c.Flags().Changed("standbys")
				return runFleetUp(c.Context(), io, opts)
			}
			return runSandboxUp(c.Context(), io, opts)
		},
	}
	up.Flags().IntVar(&opts.portBase, "port-base", sandbox.DefaultPortBase, "PgBouncer's port; node i listens on port-base+i")
	up.Flags().IntVar(&opts.standbys, "standbys", 2, "number of standbys (of each cluster with --clusters, where the default is 1)")
	up.Flags().IntVar(&opts.clusters, "clusters", 0, fmt.Sprintf("bring up a fleet to rehearse on: N clusters c1..cN in DIR/c1.. (cluster cI's ports from port-base+%d*(I-1)), and DIR/%s naming them", sandbox.FleetStride, sandbox.FleetFileName))
	up.Flags().StringVar(&opts.pgBin, "pg-bin", "", "PostgreSQL's bin directory (default: found by pg_config, the PATH or /usr/lib/postgresql)")
	up.Flags().StringVar(&opts.runAs, "run-as", "", "OS user the servers run as (default: you; when root, postgres or nobody)")
	up.Flags().BoolVar(&opts.hosts, "hosts", false, "each node and the pooler on a host of its own (network namespace, address, sshd), reached over ssh; needs root")
	up.Flags().IntVar(&opts.poolers, "poolers", 1, "number of PgBouncers in front of the primary, each with its own port and config (more than one: the inventory lists them as poolers:, each with an app_ro entry on the last standby)")
	up.Flags().StringVar(&opts.router, "router", sandbox.RouterNone, "what clients connect to on port-base: none (PgBouncer) or haproxy (HAProxy instead: a backend with every node, a runtime API socket in DIR/haproxy; health checks on Patroni's REST API with --manager patroni, else a TCP check with the standbys' servers in maintenance)")
	up.Flags().BoolVar(&opts.green, "green", false, "also bring up green1, an empty server of a cluster of its own on the port after the others, for blue/green moves by logical replication: wal_level = logical everywhere, and a green: section in the inventory")
	up.Flags().StringVar(&opts.greenBinDir, "green-bin-dir", "", "with --green: green's PostgreSQL bin directory, another major version's say (default: blue's)")
	up.Flags().StringVar(&opts.manager, "manager", sandbox.ManagerNone, "cluster manager: none (plain streaming), patroni (one Patroni per node, single-node etcd on 127.0.0.1), repmgr (nodes registered with repmgr, a repmgrd per node) or pg_auto_failover (a monitor and one keeper per node)")
	status := &cobra.Command{
		Use:   "status",
		Short: "Show each node's role, timeline, upstream and lag",
		Args:  exactArgs(0, "no arguments"),
		RunE:  func(c *cobra.Command, _ []string) error { return runSandboxStatus(c.Context(), io, opts) },
	}
	status.Flags().BoolVar(&opts.json, "json", false, "one JSON object per node")
	down := &cobra.Command{
		Use:   "down",
		Short: "Stop the sandbox's processes by PID and remove its directory",
		Args:  exactArgs(0, "no arguments"),
		RunE:  func(c *cobra.Command, _ []string) error { return runSandboxDown(c.Context(), io, opts) },
	}
	cmd.AddCommand(up, status, down, newSandboxPrereqsCmd(io, opts))
	return cmd
}

func runSandboxUp(ctx context.Context, io *streams, opts *sandboxOpts) error {
	if opts.poolers < 1 {
		return usagef("sandbox up: --poolers %d: want 1 to %d", opts.poolers, sandbox.MaxPoolers)
	}
	if opts.poolers > 1 && opts.router != "" && opts.router != sandbox.RouterNone {
		return usagef("sandbox up: --poolers %d with --router %s: HAProxy takes the poolers' place in this sandbox; pick one", opts.poolers, opts.router)
	}
	sb, err := sandbox.Up(ctx, sandbox.Options{
		Dir: opts.dir, PortBase: opts.portBase, Standbys: opts.standbys, BinDir: opts.pgBin, RunAs: opts.runAs, Manager: opts.manager, Hosts: opts.hosts, Poolers: opts.poolers, Router: opts.router,
		Green: opts.green, GreenBinDir: opts.greenBinDir,
		Log: func(format string, args ...any) { fmt.Fprintf(io.err, "sandbox: "+format+"\n", args...) },
	})
	if err != nil {
		return usagef("sandbox up: %v", err)
	}
	if sb.Net != nil {
		fmt.Fprintf(io.out, "sandbox up in %s: a REHEARSAL cluster on hosts of its own (network %s, this host %s), trust authentication on that network only\n",
			sb.Dir, sb.Net.Subnet, sb.Net.Bastion)
	} else {
		fmt.Fprintf(io.out, "sandbox up in %s: a REHEARSAL cluster, trust authentication on 127.0.0.1 only\n", sb.Dir)
	}
	if sb.Router == sandbox.RouterHAProxy {
		fmt.Fprintf(io.out, "  haproxy    127.0.0.1:%d  (database app; backend %s; runtime API %s)\n", sb.PortBase, sandbox.HAProxyBackend, sb.HAProxySocket())
	} else {
		fmt.Fprintf(io.out, "  pgbouncer  %s:%d  (database app; admin console: dbname=pgbouncer user=postgres)\n", sb.Addr(sandbox.PoolerHost), sb.PortBase)
	}
	for i, n := range sb.Nodes {
		role := "standby"
		if i == 0 {
			role = "primary"
		}
		fmt.Fprintf(io.out, "  %-9s  %s:%d  %s  %s\n", n.Name, sb.Addr(n.Name), n.Port, role, n.DataDir)
	}
	if g := sb.Green; g != nil {
		fmt.Fprintf(io.out, "  %-9s  %s:%d  green    %s  (empty, PostgreSQL in %s)\n", g.Name, sb.Addr(g.Name), g.Port, g.DataDir, sb.GreenBinDir)
	}
	if sb.Net != nil {
		fmt.Fprintf(io.out, "ssh: ssh -F %s pg1   (each host by its name; namespaces %s-*)\n", sb.Net.SSHConfig, sb.Net.Prefix)
	}
	if sb.Manager == sandbox.ManagerPatroni {
		for _, n := range sb.Nodes {
			fmt.Fprintf(io.out, "  patroni %s  %s  (config %s)\n", n.Name, sb.RESTURL(n), filepath.Join(sb.Dir, n.Name+".yml"))
		}
	}
	if sb.Manager == sandbox.ManagerRepmgr {
		for _, n := range sb.Nodes {
			fmt.Fprintf(io.out, "  repmgr %s  %s\n", n.Name, sb.RepmgrConfig(n))
		}
	}
	if sb.Manager == sandbox.ManagerPgAutoFailover {
		fmt.Fprintf(io.out, "  monitor    %s:%d  (pg_auto_failover; %s show state --pgdata %s)\n", sb.MonitorAddr(), sb.MonitorPort(), "pg_autoctl", filepath.Join(sb.Dir, "monitor"))
	}
	fmt.Fprintf(io.out, "inventory: %s\n", sb.Inventory())
	return nil
}

func runSandboxStatus(ctx context.Context, io *streams, opts *sandboxOpts) error {
	if sandbox.IsFleet(opts.dir) {
		return runSandboxFleetStatus(ctx, io, opts)
	}
	sb, err := sandbox.Load(opts.dir)
	if err != nil {
		return usagef("%v", err)
	}
	return renderSandboxStatus(ctx, io, opts, []namedSandbox{{sb: sb}})
}

// namedSandbox is one sandbox whose status is shown: a fleet's cluster by
// its name, or the one sandbox of a directory, unnamed.
type namedSandbox struct {
	name string
	sb   *sandbox.Sandbox
}

// renderSandboxStatus shows every node of every sandbox, with a cluster
// column (or key) when they are named.
func renderSandboxStatus(ctx context.Context, io *streams, opts *sandboxOpts, sbs []namedSandbox) error {
	if opts.json {
		enc := json.NewEncoder(io.out)
		for _, ns := range sbs {
			for _, s := range ns.sb.Status(ctx) {
				row := map[string]any{"node": s.Node.Name, "port": s.Node.Port, "running": s.Running}
				if s.Green {
					row["green"] = true
				}
				if ns.name != "" {
					row["cluster"] = ns.name
				}
				if s.Err != nil {
					row["error"] = s.Err.Error()
				} else {
					row["role"], row["timeline"], row["upstream"], row["lag_bytes"] = s.State.Role, s.State.Timeline, s.State.Upstream, s.LagBytes
				}
				if err := enc.Encode(row); err != nil {
					return err
				}
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(io.out, 0, 0, 2, ' ', 0)
	cluster := func(name string) string { return "" }
	if sbs[0].name != "" {
		cluster = func(name string) string { return name + "\t" }
		fmt.Fprint(tw, "CLUSTER\t")
	}
	fmt.Fprintln(tw, "NODE\tPORT\tROLE\tTIMELINE\tUPSTREAM\tLAG")
	for _, ns := range sbs {
		for _, s := range ns.sb.Status(ctx) {
			if s.Err != nil {
				state := "down"
				if s.Running {
					state = "not answering"
				}
				fmt.Fprintf(tw, "%s%s\t%d\t%s\t\t\t%v\n", cluster(ns.name), s.Node.Name, s.Node.Port, state, s.Err)
				continue
			}
			up, lag, role := "-", "-", string(s.State.Role)
			if s.Green {
				role += " (green)"
			}
			if s.State.Role == topology.RoleStandby {
				up = s.State.Upstream
				if !s.State.Streaming {
					up = "not streaming"
				}
				lag = fmt.Sprintf("%d bytes", s.LagBytes)
			}
			fmt.Fprintf(tw, "%s%s\t%d\t%s\t%d\t%s\t%s\n", cluster(ns.name), s.Node.Name, s.Node.Port, role, s.State.Timeline, up, lag)
		}
	}
	return tw.Flush()
}

func runSandboxDown(ctx context.Context, io *streams, opts *sandboxOpts) error {
	if sandbox.IsFleet(opts.dir) {
		return runFleetDown(ctx, io, opts)
	}
	sb, err := sandbox.Load(opts.dir)
	if err != nil {
		return usagef("%v", err)
	}
	pids := sb.PIDs()
	if err := sb.Down(ctx); err != nil {
		return fmt.Errorf("sandbox down: %w", err)
	}
	fmt.Fprintf(io.out, "sandbox down: stopped %d processes, removed %s\n", len(pids), sb.Dir)
	return nil
}
