package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/switchover/switchover/internal/sandbox"
)

// fleetUnsupported names the `sandbox up` flags a fleet sandbox does not
// take yet, as given: its clusters are plain streaming with one PgBouncer
// each, on this host.
func fleetUnsupported(opts *sandboxOpts) []string {
	var out []string
	if opts.manager != "" && opts.manager != sandbox.ManagerNone {
		out = append(out, "--manager "+opts.manager)
	}
	if opts.router != "" && opts.router != sandbox.RouterNone {
		out = append(out, "--router "+opts.router)
	}
	if opts.hosts {
		out = append(out, "--hosts")
	}
	if opts.poolers != 1 {
		out = append(out, "--poolers "+strconv.Itoa(opts.poolers))
	}
	return out
}

// runFleetUp is `sandbox up --clusters N`: a fleet sandbox, its table and
// what to run next.
func runFleetUp(ctx context.Context, io *streams, opts *sandboxOpts) error {
	if opts.clusters < 1 || opts.clusters > sandbox.MaxFleetClusters {
		return usagef("sandbox up: --clusters %d: want 1 to %d", opts.clusters, sandbox.MaxFleetClusters)
	}
	if bad := fleetUnsupported(opts); len(bad) > 0 {
		them := "them"
		if len(bad) == 1 {
			them = "it"
		}
		return usagef("sandbox up --clusters: %s: not supported for a fleet sandbox yet (its clusters are plain streaming, each with one PgBouncer, on this host); leave %s out, or bring up a single sandbox without --clusters",
			strings.Join(bad, ", "), them)
	}
	standbys := 1
	if opts.standbysSet {
		standbys = opts.standbys
	}
	f, err := sandbox.FleetUp(ctx, sandbox.FleetOptions{
		Dir: opts.dir, Clusters: opts.clusters, PortBase: opts.portBase, Standbys: standbys, BinDir: opts.pgBin, RunAs: opts.runAs,
		Log: func(format string, args ...any) { fmt.Fprintf(io.err, "sandbox "+format+"\n", args...) },
	})
	if err != nil {
		return usagef("sandbox up: %v", err)
	}
	fmt.Fprintf(io.out, "fleet sandbox up in %s: %d REHEARSAL clusters, trust authentication on 127.0.0.1 only\n", f.Dir, len(f.Clusters))
	if err := renderFleetTable(io.out, f); err != nil {
		return err
	}
	fmt.Fprintf(io.out, "fleet file: %s (it names each cluster's DIR/inventory.yaml)\n", f.FleetFile())
	fmt.Fprintf(io.out, "next:\n  switchover fleet plan %s\n  switchover sandbox status --dir %s\n  switchover sandbox down --dir %s\n", f.FleetFile(), f.Dir, f.Dir)
	return nil
}

// renderFleetTable shows each cluster of a fleet sandbox: where its
// PgBouncer, primary and standbys listen, and its directory.
func renderFleetTable(w io.Writer, f *sandbox.Fleet) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  CLUSTER\tPOOLER\tPRIMARY\tSTANDBYS\tDIR")
	for _, c := range f.Clusters {
		standbys := make([]string, len(c.Standbys))
		for i, p := range c.Standbys {
			standbys[i] = strconv.Itoa(p)
		}
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%s\t%s\n", c.Name, c.Pooler, c.Primary, strings.Join(standbys, ","), c.Dir)
	}
	return tw.Flush()
}

// runSandboxFleetStatus is `sandbox status` on a fleet sandbox: every node of
// every cluster, by cluster.
func runSandboxFleetStatus(ctx context.Context, io *streams, opts *sandboxOpts) error {
	f, err := sandbox.LoadFleet(opts.dir)
	if err != nil {
		return usagef("%v", err)
	}
	var sbs []namedSandbox
	for _, c := range f.Clusters {
		sb, err := sandbox.Load(c.Dir)
		if err != nil {
			return usagef("cluster %s: %v", c.Name, err)
		}
		sbs = append(sbs, namedSandbox{name: c.Name, sb: sb})
	}
	return renderSandboxStatus(ctx, io, opts, sbs)
}

// runFleetDown is `sandbox down` on a fleet sandbox: every cluster's own
// processes stopped by PID, and the directory removed.
func runFleetDown(ctx context.Context, io *streams, opts *sandboxOpts) error {
	f, err := sandbox.LoadFleet(opts.dir)
	if err != nil {
		return usagef("%v", err)
	}
	pids := f.PIDs()
	if err := f.Down(ctx); err != nil {
		return fmt.Errorf("sandbox down: %w", err)
	}
	fmt.Fprintf(io.out, "sandbox down: %d clusters, stopped %d processes, removed %s\n", len(f.Clusters), len(pids), f.Dir)
	return nil
}
