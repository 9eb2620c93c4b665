package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchover/switchover/checks"
	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/topology"
	"github.com/switchover/switchover/runbook"
)

type statusOpts struct {
	inventory string
	json      bool
	timeout   time.Duration
}

func newStatusCmd(io *streams) *cobra.Command {
	opts := &statusOpts{}
	cmd := &cobra.Command{
		Use:   "status -i INVENTORY",
		Short: "Show the cluster as switchover sees it now: roles, upstreams, lag, timelines, blocking sessions, pooler, maintenance",
		Long: `Status asks every node of the inventory, at once, what it is: primary or standby, its
timeline, whom it streams from and how far behind it is, and how many sessions would block
a switchover to it (locks, advisory locks, old transactions). It also shows where the pooler
sends clients and whether it is paused, and whether the cluster manager is paused. It changes
nothing.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error { return runStatus(c.Context(), io, opts) },
	}
	cmd.Flags().StringVarP(&opts.inventory, "inventory", "i", "", "inventory `FILE`")
	cmd.Flags().BoolVar(&opts.json, "json", false, "print one JSON object")
	cmd.Flags().DurationVar(&opts.timeout, "timeout", 10*time.Second, "how long to wait for the nodes")
	return cmd
}

// clusterStatus is what `switchover status --json` prints: the topology,
// with the maintenance check's verdict and, for Patroni, the fields status
// printed before the topology carried Patroni's view. The JSON names are
// stable.
type clusterStatus struct {
	*topology.Topology
	Maintenance string `json:"maintenance"`
	Paused      *bool  `json:"maintenance_paused,omitempty"`
	// PatroniLeader is who holds Patroni's leader lock ("" for none);
	// PatroniError says why /cluster could not be read.
	PatroniLeader string   `json:"patroni_leader,omitempty"`
	PatroniError  string   `json:"patroni_error,omitempty"`
	PatroniOthers []string `json:"patroni_members_not_in_inventory,omitempty"`
}

func runStatus(ctx context.Context, io *streams, opts *statusOpts) error {
	if opts.inventory == "" {
		return usagef("status needs the cluster: -i INVENTORY")
	}
	b, err := os.ReadFile(opts.inventory)
	if err != nil {
		return usagef("inventory %s: %v", opts.inventory, err)
	}
	inv, err := runbook.LoadInventory(opts.inventory, b)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.timeout)
	defer cancel()
	st := inspectCluster(ctx, inv.Cluster)
	if opts.json {
		enc := json.NewEncoder(io.out)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	renderStatus(io, st)
	return nil
}

// inspectCluster reads the topology and, at the same time, runs the
// maintenance check.
func inspectCluster(ctx context.Context, c *cluster.Cluster) *clusterStatus {
	var maint checks.Result
	done := make(chan struct{})
	go func() {
		defer close(done)
		maint = maintenance(ctx, c)
	}()
	st := &clusterStatus{Topology: topology.Inspect(ctx, c, topology.Options{})}
	<-done
	if v := st.Patroni; v != nil {
		st.PatroniLeader, st.PatroniError, st.PatroniOthers = v.Leader, v.Error, v.Others
	}
	st.Maintenance = maint.Observed
	if st.Patroni != nil && maint.Status == checks.Fail {
		// The check speaks for runbooks that stop and promote servers
		// themselves; a Patroni cluster is also switched over by Patroni.
		st.Maintenance = "patroni is not paused: it fails over on its own. patroni-switchover has Patroni switch over itself; a runbook that stops or promotes servers directly must pause it first"
	}
	if maint.Status == checks.Pass || maint.Status == checks.Fail {
		p := maint.Status == checks.Pass && c.Manager != nil
		if c.Manager != nil {
			st.Paused = &p
		}
	}
	return st
}

func maintenance(ctx context.Context, c *cluster.Cluster) checks.Result {
	def, ok := checks.Lookup("cluster.maintenance")
	if !ok {
		return checks.Result{Status: checks.Error, Observed: "no cluster.maintenance check"}
	}
	chk, err := def.New(params.NewValues(nil))
	if err != nil {
		return checks.Errored(err)
	}
	return chk.Run(ctx, &cluster.Target{Cluster: c, Facts: &cluster.Facts{}})
}

func renderStatus(io *streams, st *clusterStatus) {
	fmt.Fprintf(io.out, "cluster %s\n\n", st.Cluster)
	tw := tabwriter.NewWriter(io.out, 0, 0, 2, ' ', 0)
	header := "NODE\tROLE\tTIMELINE\tUPSTREAM\tLAG\tBLOCKING"
	if st.Patroni != nil {
		header += "\tPATRONI"
	}
	fmt.Fprintln(tw, header)
	for _, ns := range st.Nodes {
		if ns.Error != "" {
			fmt.Fprintf(tw, "%s\tunreachable\t\t\t\t%s%s\n", ns.Name, ns.Error, patroniCell(st, ns, "; "))
			continue
		}
		up, lag := "-", "-"
		if ns.Role == topology.RoleStandby {
			switch {
			case !ns.Streaming:
				up = "not streaming"
			case ns.UpstreamNode != "":
				up = ns.UpstreamNode + " (" + ns.Upstream + ")"
			default:
				up = ns.Upstream
			}
			if ns.LagBytes != nil {
				lag = fmt.Sprintf("%d bytes", *ns.LagBytes)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d%s\n", ns.Name, ns.Role, ns.Timeline, up, lag, ns.Blocking, patroniCell(st, ns, "\t"))
	}
	tw.Flush()
	fmt.Fprintln(io.out)
	switch len(st.Primaries) {
	case 0:
		fmt.Fprintln(io.out, "primary:  none answers as a primary")
	case 1:
		fmt.Fprintf(io.out, "primary:  %s\n", st.Primaries[0])
	default:
		sort.Strings(st.Primaries)
		fmt.Fprintf(io.out, "primary:  %d nodes claim it: %s\n", len(st.Primaries), strings.Join(st.Primaries, ", "))
	}
	if p := st.Pooler; p != nil {
		switch {
		case p.Error != "":
			fmt.Fprintf(io.out, "pooler:   %s: %s\n", p.Kind, p.Error)
		default:
			to := p.Target
			if p.Node != "" {
				to = p.Node + " (" + p.Target + ")"
			}
			paused := ""
			if p.Paused {
				paused = ", PAUSED: clients wait"
			}
			fmt.Fprintf(io.out, "pooler:   %s sends database %s to %s%s\n", p.Kind, p.Database, to, paused)
		}
	} else {
		fmt.Fprintln(io.out, "pooler:   none in the inventory")
	}
	renderReplication(io, st.Topology)
	renderPgaf(io, st.Topology)
	if st.Patroni != nil {
		switch {
		case st.PatroniError != "":
			fmt.Fprintf(io.out, "patroni:  /cluster could not be read: %s\n", st.PatroniError)
		case st.PatroniLeader == "":
			fmt.Fprintln(io.out, "patroni:  no member holds the leader lock")
		default:
			fmt.Fprintf(io.out, "patroni:  %s holds the leader lock\n", st.PatroniLeader)
		}
		if len(st.PatroniOthers) > 0 {
			fmt.Fprintf(io.out, "patroni:  members not in the inventory: %s\n", strings.Join(st.PatroniOthers, ", "))
		}
		for _, ns := range st.Nodes {
			if ns.Disagrees != "" {
				fmt.Fprintf(io.out, "DISAGREE: %s: %s\n", ns.Name, ns.Disagrees)
			}
		}
	}
	fmt.Fprintf(io.out, "manager:  %s\n", st.Maintenance)
}

// renderReplication shows what each primary promised its standbys and
// consumers: synchronous_standby_names with how each standby counts, and
// its replication slots with how far behind each is.
func renderReplication(io *streams, t *topology.Topology) {
	for _, name := range t.Primaries {
		p := t.Node(name)
		if p.SynchronousStandbyNames != "" {
			var counted []string
			for _, s := range p.Senders {
				who := s.App
				if s.Node != "" && s.Node != s.App {
					who = s.Node + " as " + s.App
				}
				counted = append(counted, fmt.Sprintf("%s %s", who, s.SyncState))
			}
			fmt.Fprintf(io.out, "sync:     %s: synchronous_standby_names = '%s'; %s\n", name, p.SynchronousStandbyNames, orNone(counted, "no standby connected"))
		}
		if len(p.Slots) > 0 {
			var slots []string
			for _, s := range p.Slots {
				d := s.Name + " (" + s.Type
				if s.Plugin != "" {
					d += " " + s.Plugin
				}
				if !s.Active {
					d += ", inactive"
				}
				if s.BehindBytes != nil {
					d += fmt.Sprintf(", %d bytes behind", *s.BehindBytes)
				}
				slots = append(slots, d+")")
			}
			fmt.Fprintf(io.out, "slots:    %s: %s\n", name, strings.Join(slots, ", "))
		}
	}
}

func orNone(items []string, none string) string {
	if len(items) == 0 {
		return none
	}
	return strings.Join(items, ", ")
}

// patroniCell is a node's PATRONI column: its role and state in /cluster,
// its lag there, and the tags a switchover cares about.
func patroniCell(st *clusterStatus, ns *topology.Node, sep string) string {
	if st.Patroni == nil {
		return ""
	}
	m := ns.Patroni
	if m == nil {
		if st.PatroniError != "" {
			return sep + "?"
		}
		return sep + "not a member"
	}
	cell := string(m.Role) + " " + string(m.State)
	if m.LagBytes != nil && !m.Role.IsLeader() {
		cell += fmt.Sprintf(", lag %d", *m.LagBytes)
	}
	if m.NoFailover {
		cell += ", nofailover"
	}
	if m.NoLoadBalance {
		cell += ", noloadbalance"
	}
	if ns.Disagrees != "" {
		cell += " (DISAGREES)"
	}
	return sep + cell
}

// renderPgaf prints the pg_auto_failover monitor's view and where it and
// PostgreSQL disagree.
func renderPgaf(io *streams, t *topology.Topology) {
	v := t.Pgaf
	if v == nil {
		return
	}
	if v.Error != "" {
		fmt.Fprintf(io.out, "pg_auto_failover: the monitor could not be read: %s\n", v.Error)
		return
	}
	var parts []string
	for _, n := range v.Nodes {
		parts = append(parts, n.Name+" "+n.String())
	}
	settled := "settled"
	if v.Unsettled != "" {
		settled = "not settled: " + v.Unsettled
	}
	fmt.Fprintf(io.out, "pg_auto_failover: monitor %s, formation %s group %d: %s (%s)\n", v.Monitor, v.Formation, v.Group, strings.Join(parts, ", "), settled)
	if len(v.Others) > 0 {
		fmt.Fprintf(io.out, "pg_auto_failover: nodes not in the inventory: %s\n", strings.Join(v.Others, ", "))
	}
	for _, ns := range t.Nodes {
		if ns.Disagrees != "" && t.Patroni == nil {
			fmt.Fprintf(io.out, "DISAGREE: %s: %s\n", ns.Name, ns.Disagrees)
		}
	}
}
