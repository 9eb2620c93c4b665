package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchover/switchover/checks"
	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/topology"
	"github.com/switchover/switchover/runbook"
	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"
)

type statusOpts struct {
	inventory  string
	json       bool
	timeout    time.Duration
	journalDir string // where the local lock is kept
}

func newStatusCmd(io *streams) *cobra.Command {
	opts := &statusOpts{}
	cmd := &cobra.Command{
		Use:   "status -i INVENTORY",
		Short: "Show the cluster as switchover sees it now: roles, upstreams, lag, sync state, slots, the run lock, pooler, maintenance",
		Long: `Status asks every node of the inventory, at once, what it is: primary or standby, its
timeline, whom it streams from, how far behind it is in bytes and in time, how its
upstream counts it for synchronous replication, and how many sessions would block a
switchover to it (locks, advisory locks, old transactions). It shows the primary's
synchronous_standby_names and replication slots (with how far behind each is), which run
holds the cluster (the lock in the journal directory and the claim kept in the cluster),
where the pooler sends clients and whether it is paused, and whether the cluster manager
is paused. It changes nothing.

Exit codes (stable; --json carries the same as exit_code and health):
  0  healthy: one primary, every standby answers and streams
  1  internal error
  2  bad usage or an invalid inventory
  3  degraded: one primary, but a node does not answer or a standby does not stream
     from it (a switchover's preflight would refuse)
  7  no primary: no node answers as a primary, or a standby streams from a node
     that does not answer here (which may still be a primary)
  8  two primaries: more than one node answers as a primary`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			if f := c.Flag("journal-dir"); f != nil {
				opts.journalDir = f.Value.String()
			}
			return runStatus(c.Context(), io, opts)
		},
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
	// Verdict is the cluster's health and why; ExitCode what status
	// exits with for it.
	topology.Verdict
	ExitCode int `json:"exit_code"`
	// Primary is the node run and plan take for the primary (""
	// when the cluster does not say: see health).
	Primary string `json:"primary,omitempty"`
	// LocalLock is the run holding the cluster's lock in the journal
	// directory status was pointed at; the claim kept in the cluster is
	// the topology's run_claim.
	LocalLock *runbook.LocalLock `json:"local_lock,omitempty"`
	// ClaimProcess says whether the run that claims the cluster still
	// runs: "alive" or "gone" when it ran on this host, "unknown" when it
	// ran on another; ClaimJournal whether its journal is in the journal
	// directory status was pointed at.
	ClaimProcess string `json:"run_claim_process,omitempty"`
	ClaimJournal bool   `json:"run_claim_journal_here,omitempty"`
	Maintenance  string `json:"maintenance"`
	Paused       *bool  `json:"maintenance_paused,omitempty"`
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
	inv, err := spec.LoadInventory(opts.inventory, b)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.timeout)
	defer cancel()
	st := inspectCluster(ctx, inv.Cluster)
	if opts.journalDir != "" {
		st.LocalLock = runbook.ReadLocalLock(opts.journalDir, inv.Cluster.Name)
	}
	if c := st.Claim; c != nil {
		st.ClaimProcess = processState(c.Host, c.PID)
		if opts.journalDir != "" {
			_, err := os.Stat(journal.JournalPath(opts.journalDir, c.RunID))
			st.ClaimJournal = err == nil
		}
	}
	if opts.json {
		enc := json.NewEncoder(io.out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(st); err != nil {
			return err
		}
	} else {
		renderStatus(io, st)
	}
	return st.err()
}

// healthError is status's verdict on a cluster that is not healthy: the
// exit code that says so, and why.
type healthError struct {
	code    int
	verdict topology.Verdict
}

func (e *healthError) Error() string {
	return fmt.Sprintf("cluster %s: %s", strings.ReplaceAll(string(e.verdict.Health), "_", " "), strings.Join(e.verdict.Reasons, "; "))
}

// statusExit is the exit code of each health; they are stable.
var statusExit = map[topology.Health]int{
	topology.Healthy:      exitOK,
	topology.Degraded:     exitPrecondition,
	topology.NoPrimary:    exitNoPrimary,
	topology.TwoPrimaries: exitTwoPrimaries,
}

// judge sets the verdict and the exit code.
func (st *clusterStatus) judge() {
	st.Verdict = st.Topology.Verdict()
	st.Primary, _ = st.Topology.Primary()
	code, ok := statusExit[st.Health]
	if !ok {
		code = exitInternal
	}
	st.ExitCode = code
}

// err is the error status returns for its verdict: nil when healthy.
func (st *clusterStatus) err() error {
	if st.ExitCode == exitOK {
		return nil
	}
	return &healthError{code: st.ExitCode, verdict: st.Verdict}
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
	st.judge()
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
	header := "NODE\tROLE\tTIMELINE\tUPSTREAM\tLAG\tDELAY\tSYNC\tBLOCKING"
	if st.Patroni != nil {
		header += "\tPATRONI"
	}
	fmt.Fprintln(tw, header)
	var down []string
	for _, ns := range st.Nodes {
		if ns.Error != "" {
			fmt.Fprintf(tw, "%s\tunreachable\t-\t-\t-\t-\t-\t-%s\n", ns.Name, patroniCell(st, ns, "\t"))
			down = append(down, fmt.Sprintf("%s: %s", ns.Name, ns.Error))
			continue
		}
		up, lag, delay, sync := "-", "-", "-", "-"
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
			delay = replayDelay(ns)
			if ns.SyncState != "" {
				sync = ns.SyncState
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%d%s\n", ns.Name, ns.Role, ns.Timeline, up, lag, delay, sync, ns.Blocking, patroniCell(st, ns, "\t"))
	}
	tw.Flush()
	fmt.Fprintln(io.out)
	for _, d := range down {
		fmt.Fprintf(io.out, "down:     %s\n", d)
	}
	switch len(st.Primaries) {
	case 0:
		fmt.Fprintln(io.out, "primary:  none answers as a primary")
	case 1:
		fmt.Fprintf(io.out, "primary:  %s\n", st.Primaries[0])
	default:
		sort.Strings(st.Primaries)
		fmt.Fprintf(io.out, "primary:  %d nodes claim it: %s\n", len(st.Primaries), strings.Join(st.Primaries, ", "))
	}
	renderPoolers(io, st.Topology)
	renderRouter(io, st.Topology)
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
	renderRepmgr(io, st.Topology)
	fmt.Fprintf(io.out, "manager:  %s\n", st.Maintenance)
	renderLocks(io, st)
	renderHealth(io, st)
}

// replayDelay is a standby's lag in time: the larger of its own measure
// (the age of the last replayed transaction while WAL waits to be
// replayed) and its upstream's replay_lag; "-" when neither is known.
func replayDelay(n *topology.Node) string {
	var secs *float64
	for _, v := range []*float64{n.LagSeconds, n.ReplayLagSeconds} {
		if v != nil && (secs == nil || *v > *secs) {
			secs = v
		}
	}
	if secs == nil {
		return "-"
	}
	return seconds(*secs)
}

// seconds renders a delay the way a DBA reads it: 0s, 12ms, 3.4s, 2m5s.
func seconds(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d <= 0:
		return "0s"
	case d < time.Millisecond:
		return "<1ms"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

// renderLocks says which run holds the cluster: the lock in this journal
// directory and the claim kept in the cluster, each with who, since when
// and which run.
func renderLocks(io *streams, st *clusterStatus) {
	switch l := st.LocalLock; {
	case l == nil:
		fmt.Fprintln(io.out, "lock:     free here (no run holds the lock in this journal directory)")
	case l.Live:
		fmt.Fprintf(io.out, "lock:     held by %s\n", l.Holder)
	default:
		fmt.Fprintf(io.out, "lock:     left by %s, which never finished: `switchover resume %s`, or --take-over\n", l.Holder, l.RunID)
	}
	if c := st.Claim; c != nil {
		fmt.Fprintf(io.out, "claim:    %s, seen on %s\n", c.Holder, strings.Join(c.SeenOn, ", "))
		local := st.LocalLock != nil && st.LocalLock.RunID == c.RunID
		switch {
		case local && st.LocalLock.Live:
			// The lock line says it is under way.
		case st.ClaimProcess == "alive":
			fmt.Fprintf(io.out, "          its process (pid %d) runs on this host: the run is under way\n", c.PID)
		case st.ClaimJournal:
			fmt.Fprintf(io.out, "          its process is not running here; its journal is: `switchover resume %s`\n", c.RunID)
		case st.ClaimProcess == "gone":
			fmt.Fprintf(io.out, "          its process (pid %d) is gone and its journal is not in this journal directory: finish it from the cluster's state (docs/runs.md: finishing another operator's run)\n", c.PID)
		default:
			fmt.Fprintf(io.out, "          it ran on %s: whether pid %d still runs cannot be told from here; if that run is gone and its journal with it, finish it from the cluster's state (docs/runs.md: finishing another operator's run)\n", c.Host, c.PID)
		}
	} else {
		fmt.Fprintln(io.out, "claim:    none in the cluster")
	}
}

// renderHealth ends status with its verdict and exit code.
func renderHealth(io *streams, st *clusterStatus) {
	h := strings.ReplaceAll(string(st.Health), "_", " ")
	if len(st.Reasons) == 0 {
		fmt.Fprintf(io.out, "health:   %s (exit %d)\n", h, st.ExitCode)
		return
	}
	fmt.Fprintf(io.out, "health:   %s (exit %d): %s\n", h, st.ExitCode, strings.Join(st.Reasons, "; "))
}

// renderReplication shows what each primary promised its standbys and
// consumers: synchronous_standby_names with how each standby counts, and
// its replication slots with how far behind each is.
func renderReplication(io *streams, t *topology.Topology) {
	for _, name := range t.Primaries {
		p := t.Node(name)
		if p.SynchronousStandbyNames == "" {
			fmt.Fprintf(io.out, "sync:     %s: synchronous_standby_names is empty: every standby is asynchronous\n", name)
		} else {
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

// renderPoolers prints every pooler: where its client database routes and
// whether it is paused, then each other entry it carries.
func renderPoolers(io *streams, top *topology.Topology) {
	if len(top.Poolers) == 0 {
		fmt.Fprintln(io.out, "pooler:   none in the inventory")
		return
	}
	for _, p := range top.Poolers {
		who := p.Kind
		if len(top.Poolers) > 1 {
			who = p.Name + " (" + p.Kind + ")"
		}
		if p.Error != "" {
			fmt.Fprintf(io.out, "pooler:   %s: %s\n", who, p.Error)
			continue
		}
		fmt.Fprintf(io.out, "pooler:   %s sends database %s to %s%s\n", who, p.Database, routeTo(p.Node, p.Target), pausedNote(p.Paused)+disabledNote(p.Disabled))
		for _, r := range p.Databases {
			if r.Name == p.Database || r.Target == "" {
				continue // the client database above; the admin console
			}
			fmt.Fprintf(io.out, "          entry %s to %s%s\n", r.Name, routeTo(r.Node, r.Target), pausedNote(r.Paused)+disabledNote(r.Disabled))
		}
	}
}

// renderRouter prints where the TCP router sends new connections, server
// by server; nothing without one.
func renderRouter(io *streams, top *topology.Topology) {
	v := top.Router
	if v == nil {
		return
	}
	if v.Error != "" {
		fmt.Fprintf(io.out, "router:   %s backend %s: %s\n", v.Kind, v.Backend, v.Error)
		return
	}
	to := "no server"
	if len(v.RoutesTo) > 0 {
		to = strings.Join(v.RoutesTo, ", ")
	}
	var each []string
	for _, s := range v.Servers {
		each = append(each, fmt.Sprintf("%s %s %s", s.Name, s.State, s.Health))
	}
	fmt.Fprintf(io.out, "router:   %s backend %s sends new connections to %s (%s)\n", v.Kind, v.Backend, to, strings.Join(each, "; "))
}

// routeTo is a pooler entry's server: its node, when one listens there.
func routeTo(node, target string) string {
	if node == "" {
		return target
	}
	return node + " (" + target + ")"
}

func pausedNote(paused bool) string {
	if paused {
		return ", PAUSED: clients wait"
	}
	return ""
}

func disabledNote(disabled bool) string {
	if disabled {
		return ", DISABLED: new clients refused (a run's guard closed it; `switchover resume` or ENABLE reopens it)"
	}
	return ""
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

// processState says whether process pid of host runs: "alive" or "gone"
// when host is this one, "unknown" otherwise.
func processState(host string, pid int) string {
	me, err := os.Hostname()
	if err != nil || host != me || pid <= 0 {
		return "unknown"
	}
	if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
		return "alive"
	}
	return "gone"
}
