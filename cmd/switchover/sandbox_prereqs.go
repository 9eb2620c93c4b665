package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/switchover/switchover/internal/sandbox"
)

// newSandboxPrereqsCmd is `sandbox prereqs`: what a sandbox needs from the
// machine, what is here, and with --install, the missing Debian packages put
// on the machine without starting their services (root only; anyone else is
// told the one command to run).
func newSandboxPrereqsCmd(io *streams, opts *sandboxOpts) *cobra.Command {
	var install bool
	c := &cobra.Command{
		Use:   "prereqs",
		Short: "Show what the sandbox needs from this machine; --install adds what is missing (root, Debian)",
		Long: `prereqs lists what 'sandbox up' with the same --manager/--hosts needs (PostgreSQL's
server binaries, PgBouncer; Patroni and etcd for --manager patroni; iproute2, OpenSSH and
sudo for --hosts) and where each was found. Exit 0 when everything is here.

With --install, run as root on Debian, the missing packages are installed with apt-get
without starting their services (a policy-rc.d that says no is in place while apt-get
runs, unless the machine has one of its own). As another user it installs nothing and
prints the one command to run.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error { return runSandboxPrereqs(c.Context(), io, opts, install) },
	}
	c.Flags().BoolVar(&install, "install", false, "install what is missing (root, Debian's apt-get), without starting services")
	c.Flags().StringVar(&opts.manager, "manager", sandbox.ManagerNone, "cluster manager the sandbox will run: none, patroni or pg_auto_failover")
	c.Flags().BoolVar(&opts.hosts, "hosts", false, "the sandbox will put each node on a host of its own (needs root, iproute2, OpenSSH, sudo)")
	c.Flags().StringVar(&opts.pgBin, "pg-bin", "", "PostgreSQL's bin directory (default: found by pg_config, the PATH or /usr/lib/postgresql)")
	return c
}

func runSandboxPrereqs(ctx context.Context, io *streams, opts *sandboxOpts, install bool) error {
	o := sandbox.Options{Manager: opts.manager, Hosts: opts.hosts, BinDir: opts.pgBin}
	needs := sandbox.Prereqs(o)
	printNeeds(io, needs)
	missing := sandbox.Missing(needs)
	if len(missing) == 0 {
		return nil
	}
	if !install {
		return usagef("missing: %s; install with `%s` (or `switchover sandbox prereqs --install` as root)",
			joinComma(missing), sandbox.InstallCommand(missing, os.Geteuid() == 0))
	}
	if os.Geteuid() != 0 {
		return usagef("missing: %s; installing packages needs root: run `%s`, then again",
			joinComma(missing), sandbox.InstallCommand(missing, false))
	}
	fmt.Fprintf(io.out, "installing %s (services not started)\n", joinComma(missing))
	err := sandbox.Install(ctx, missing, func(format string, args ...any) { fmt.Fprintf(io.err, "  "+format+"\n", args...) })
	if errors.Is(err, sandbox.ErrNotRoot) {
		return usagef("%v", err)
	}
	if err != nil {
		return err
	}
	needs = sandbox.Prereqs(o)
	if still := sandbox.Missing(needs); len(still) > 0 {
		printNeeds(io, needs)
		return fmt.Errorf("installed %s, but still missing: %s", joinComma(missing), joinComma(still))
	}
	fmt.Fprintf(io.out, "installed %s\n", joinComma(missing))
	return nil
}

func printNeeds(io *streams, needs []sandbox.Need) {
	w := tabwriter.NewWriter(io.out, 0, 0, 2, ' ', 0)
	for _, n := range needs {
		where := n.Found
		if where == "" {
			where = "missing (Debian package " + n.Package + ")"
		}
		fmt.Fprintf(w, "  %s\t%s\n", n.What, where)
	}
	w.Flush()
}

func joinComma(s []string) string { return strings.Join(s, ", ") }
