package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/spf13/cobra"

	"github.com/switchover/switchover/checks"
	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/patroni"
	"github.com/switchover/switchover/internal/pg"
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

// nodeStatus is one node in `switchover status`; the JSON names are stable.
type nodeStatus struct {
	Node         string `json:"node"`
	Role         string `json:"role,omitempty"`
	Timeline     int    `json:"timeline,omitempty"`
	Upstream     string `json:"upstream,omitempty"`      // host:port it streams from
	UpstreamNode string `json:"upstream_node,omitempty"` // that address's node in the inventory
	Streaming    bool   `json:"streaming,omitempty"`
	LagBytes     *int64 `json:"lag_bytes,omitempty"` // replay behind the primary's current LSN
	Blocking     int    `json:"blocking_sessions"`
	Version      int    `json:"server_version_num,omitempty"`
	Error        string `json:"error,omitempty"`
	// Patroni is the member as Patroni's /cluster shows it, when Patroni
	// manages the cluster; Disagrees says where it and PostgreSQL differ.
	Patroni   *patroniMember `json:"patroni,omitempty"`
	Disagrees string         `json:"disagrees,omitempty"`
	state     pg.State
}

// patroniMember is one member in Patroni's view; the JSON names are stable.
type patroniMember struct {
	Role          string `json:"role"`
	State         string `json:"state"`
	Timeline      int64  `json:"timeline,omitempty"`
	LagBytes      *int64 `json:"lag_bytes,omitempty"`
	NoFailover    bool   `json:"nofailover,omitempty"`
	NoLoadBalance bool   `json:"noloadbalance,omitempty"`
}

type poolerStatus struct {
	Kind     string `json:"kind"`
	Database string `json:"database"`
	Target   string `json:"target,omitempty"`      // host:port its entry points at
	Node     string `json:"target_node,omitempty"` // that address's node
	Paused   bool   `json:"paused"`
	Error    string `json:"error,omitempty"`
}

type clusterStatus struct {
	Cluster     string        `json:"cluster"`
	Nodes       []*nodeStatus `json:"nodes"`
	Primaries   []string      `json:"primaries"`
	Pooler      *poolerStatus `json:"pooler,omitempty"`
	Maintenance string        `json:"maintenance"`
	Paused      *bool         `json:"maintenance_paused,omitempty"`
	// PatroniLeader is who holds Patroni's leader lock ("" for none);
	// PatroniError says why /cluster could not be read.
	PatroniLeader string   `json:"patroni_leader,omitempty"`
	PatroniError  string   `json:"patroni_error,omitempty"`
	PatroniOthers []string `json:"patroni_members_not_in_inventory,omitempty"`
	patroni       bool
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
	st := inspectCluster(ctx, inv)
	if opts.json {
		enc := json.NewEncoder(io.out)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	renderStatus(io, st)
	return nil
}

// inspectCluster asks every node, the pooler and the manager concurrently.
func inspectCluster(ctx context.Context, inv *runbook.Inventory) *clusterStatus {
	c := inv.Cluster
	st := &clusterStatus{Cluster: c.Name}
	addrs := map[string]string{} // host:port -> node
	for _, name := range inv.NodeOrder() {
		n := c.Nodes[name]
		st.Nodes = append(st.Nodes, &nodeStatus{Node: name})
		if cfg, err := pgconn.ParseConfig(n.Conninfo); err == nil {
			addrs[fmt.Sprintf("%s:%d", cfg.Host, cfg.Port)] = name
		}
	}
	var wg sync.WaitGroup
	for _, ns := range st.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			inspectOne(ctx, c.Nodes[ns.Node], ns)
		}()
	}
	var maint checks.Result
	wg.Add(1)
	go func() {
		defer wg.Done()
		maint = maintenance(ctx, c)
	}()
	if c.Pooler != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st.Pooler = inspectPooler(ctx, c.Pooler, addrs)
		}()
	}
	var view *patroni.State
	var viewErr error
	if c.Manager != nil && c.Manager.Kind == "patroni" {
		st.patroni = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			view, viewErr = readPatroni(ctx, c.Manager)
		}()
	}
	wg.Wait()
	var primaryLSN pg.LSN
	for _, ns := range st.Nodes {
		if ns.Error == "" && ns.state.Role == pg.RolePrimary {
			st.Primaries = append(st.Primaries, ns.Node)
			primaryLSN = max(primaryLSN, ns.state.CurrentLSN)
		}
	}
	for _, ns := range st.Nodes {
		if ns.Error == "" && ns.state.Role == pg.RoleStandby {
			ns.UpstreamNode = addrs[strings.Replace(ns.Upstream, "localhost:", "127.0.0.1:", 1)]
			if primaryLSN > 0 {
				lag := int64(primaryLSN) - int64(ns.state.ReplayLSN)
				ns.LagBytes = &lag
			}
		}
	}
	if st.patroni {
		patroniView(st, view, viewErr)
	}
	st.Maintenance = maint.Observed
	if st.patroni && maint.Status == checks.Fail {
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

// readPatroni reads /cluster from the first member API that answers.
func readPatroni(ctx context.Context, m *cluster.Manager) (*patroni.State, error) {
	c, err := patroni.New(m)
	if err != nil {
		return nil, err
	}
	return c.Cluster(ctx)
}

// patroniView puts Patroni's view beside PostgreSQL's for each node and
// says where they disagree: a leader PostgreSQL calls a standby, or a
// replica it calls a primary.
func patroniView(st *clusterStatus, view *patroni.State, err error) {
	if err != nil {
		st.PatroniError = oneLine(err.Error())
		return
	}
	known := map[string]bool{}
	for _, ns := range st.Nodes {
		known[ns.Node] = true
		m, ok := view.Member(ns.Node)
		if !ok {
			ns.Disagrees = "patroni lists no member " + ns.Node
			continue
		}
		pm := &patroniMember{Role: string(m.Role), State: string(m.State), Timeline: m.Timeline,
			NoFailover: bool(m.Tags.NoFailover), NoLoadBalance: bool(m.Tags.NoLoadBalance)}
		if m.Lag.Known {
			lag := m.Lag.Bytes
			pm.LagBytes = &lag
		}
		ns.Patroni = pm
		switch {
		case ns.Error != "":
		case m.IsLeader() && ns.state.Role == pg.RoleStandby && m.Role != "standby_leader":
			ns.Disagrees = "patroni shows it leading, PostgreSQL is in recovery"
		case !m.IsLeader() && ns.state.Role == pg.RolePrimary:
			ns.Disagrees = "patroni shows a replica, PostgreSQL is out of recovery"
		}
	}
	for _, m := range view.Members {
		if !known[m.Name] {
			st.PatroniOthers = append(st.PatroniOthers, m.Name)
		}
	}
	if l := view.Leaders(); len(l) == 1 {
		st.PatroniLeader = l[0].Name
	}
}

func inspectOne(ctx context.Context, n *cluster.Node, ns *nodeStatus) {
	conn, err := pg.Connect(ctx, n.Conninfo, 5*time.Second)
	if err != nil {
		ns.Error = oneLine(err.Error())
		return
	}
	defer pg.Release(conn)
	s, err := pg.Inspect(ctx, conn)
	if err != nil {
		ns.Error = oneLine(err.Error())
		return
	}
	ns.state = s
	ns.Role, ns.Timeline, ns.Upstream, ns.Streaming, ns.Version = string(s.Role), s.Timeline, s.Upstream, s.Streaming, s.Version
	if sessions, err := pg.BlockingSessions(ctx, conn, 5*time.Second); err == nil {
		ns.Blocking = len(sessions)
	}
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

func inspectPooler(ctx context.Context, p *cluster.Pooler, addrs map[string]string) *poolerStatus {
	ps := &poolerStatus{Kind: p.Kind, Database: p.Database}
	conn, err := pg.ConnectAdmin(ctx, p.Admin)
	if err != nil {
		ps.Error = oneLine(err.Error())
		return ps
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, "SHOW DATABASES")
	if err != nil {
		ps.Error = oneLine(err.Error())
		return ps
	}
	defer rows.Close()
	fields := rows.FieldDescriptions()
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			ps.Error = oneLine(err.Error())
			return ps
		}
		row := map[string]string{}
		for i, f := range fields {
			if vals[i] != nil {
				row[f.Name] = fmt.Sprint(vals[i])
			}
		}
		if row["name"] != p.Database {
			continue
		}
		ps.Target = row["host"] + ":" + row["port"]
		ps.Node = addrs[strings.Replace(ps.Target, "localhost:", "127.0.0.1:", 1)]
		ps.Paused = row["paused"] == "1"
	}
	return ps
}

func renderStatus(io *streams, st *clusterStatus) {
	fmt.Fprintf(io.out, "cluster %s\n\n", st.Cluster)
	tw := tabwriter.NewWriter(io.out, 0, 0, 2, ' ', 0)
	header := "NODE\tROLE\tTIMELINE\tUPSTREAM\tLAG\tBLOCKING"
	if st.patroni {
		header += "\tPATRONI"
	}
	fmt.Fprintln(tw, header)
	for _, ns := range st.Nodes {
		if ns.Error != "" {
			fmt.Fprintf(tw, "%s\tunreachable\t\t\t\t%s%s\n", ns.Node, ns.Error, patroniCell(st, ns, "; "))
			continue
		}
		up, lag := "-", "-"
		if ns.Role == string(pg.RoleStandby) {
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
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d%s\n", ns.Node, ns.Role, ns.Timeline, up, lag, ns.Blocking, patroniCell(st, ns, "\t"))
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
	if st.patroni {
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
				fmt.Fprintf(io.out, "DISAGREE: %s: %s\n", ns.Node, ns.Disagrees)
			}
		}
	}
	fmt.Fprintf(io.out, "manager:  %s\n", st.Maintenance)
}

// patroniCell is a node's PATRONI column: its role and state in /cluster,
// its lag there, and the tags a switchover cares about.
func patroniCell(st *clusterStatus, ns *nodeStatus, sep string) string {
	if !st.patroni {
		return ""
	}
	m := ns.Patroni
	if m == nil {
		if st.PatroniError != "" {
			return sep + "?"
		}
		return sep + "not a member"
	}
	cell := m.Role + " " + m.State
	if m.LagBytes != nil && !strings.Contains(m.Role, "leader") {
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

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
