package sandbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/transport"
)

// GreenNode is the name of the green server of a sandbox brought up with
// Options.Green.
const GreenNode = "green1"

// logicalSettings are appended to every server's settings, blue's and
// green's, in a sandbox with a green server: logical decoding on, and room
// for a forward subscription (green from blue) and a reverse one (blue
// from green) beside the physical standbys, each with its table sync
// workers.
const logicalSettings = `
# --- blue/green: logical replication both ways ---
wal_level = logical
max_replication_slots = 30
max_wal_senders = 30
max_logical_replication_workers = 8
max_sync_workers_per_subscription = 2
max_worker_processes = 16
`

// checkGreen refuses what Options.Green and GreenBinDir cannot go with,
// before anything is looked for or created.
func checkGreen(o Options) error {
	if !o.Green {
		if o.GreenBinDir != "" {
			return fmt.Errorf("--green-bin-dir %s without --green", o.GreenBinDir)
		}
		return nil
	}
	if o.Manager != "" && o.Manager != ManagerNone {
		return fmt.Errorf("--green with --manager %s: not supported yet; a green server beside plain streaming only", o.Manager)
	}
	if o.Hosts {
		return fmt.Errorf("--green with --hosts: not supported yet; a green server on 127.0.0.1 only")
	}
	if o.GreenBinDir != "" {
		if st, err := os.Stat(filepath.Join(o.GreenBinDir, "initdb")); err != nil || st.IsDir() {
			return fmt.Errorf("--green-bin-dir %s: no initdb there", o.GreenBinDir)
		}
	}
	return nil
}

// isGreen reports whether n is the sandbox's green server.
func (s *Sandbox) isGreen(n Node) bool { return s.Green != nil && n.Name == s.Green.Name }

// binOf is the path of a PostgreSQL program for n: green's bin directory
// for the green server, blue's for the others.
func (s *Sandbox) binOf(n Node, name string) string {
	if s.isGreen(n) && s.GreenBinDir != "" {
		return transport.ShellQuote(filepath.Join(s.GreenBinDir, name))
	}
	return s.bin(name)
}

// nodeSettings are the settings every server of this sandbox gets.
func (s *Sandbox) nodeSettings() string {
	if s.Green != nil {
		return settings + logicalSettings
	}
	return settings
}

// GreenConninfo is a superuser connection string for the green server, to
// database db; "" when the sandbox has none.
func (s *Sandbox) GreenConninfo(db string) string {
	if s.Green == nil {
		return ""
	}
	return s.Conninfo(*s.Green, db)
}

// InventoryDatabase is the database the inventory's connection strings
// name: with a green server, app, the database PgBouncer serves, which a
// blue/green move carries (the logical.* checks and steps act on the
// database of a node's conninfo); without one, postgres.
func (s *Sandbox) InventoryDatabase() string {
	if s.Green != nil {
		return "app"
	}
	return "postgres"
}

// greenName is the green cluster's name in the inventory.
func (s *Sandbox) greenName() string { return s.ClusterName() + "-green" }

// upGreen initdbs and starts the green server, empty but with blue's
// databases (postgres and app) and user (postgres), so blue's schema can
// be restored into it.
func (s *Sandbox) upGreen(ctx context.Context, log func(format string, args ...any)) error {
	g := *s.Green
	log("initdb %s (green, PostgreSQL in %s)", g.Name, s.GreenBinDir)
	if err := s.initPrimary(ctx, g); err != nil {
		return err
	}
	if err := s.start(ctx, g); err != nil {
		return err
	}
	conn, err := pg.Connect(ctx, s.Conninfo(g, "postgres"), 30*time.Second)
	if err != nil {
		return fmt.Errorf("connect %s: %w", g.Name, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE app"); err != nil {
		return fmt.Errorf("%s: create database app: %w", g.Name, err)
	}
	return nil
}

// greenInventory is the inventory's green: section; "" without one.
func (s *Sandbox) greenInventory(host string) string {
	if s.Green == nil {
		return ""
	}
	g := *s.Green
	return fmt.Sprintf("green:\n  name: %s\n  nodes:\n    %s:\n      conninfo: %q\n      host: %s\n      data_dir: %s\n      bin_dir: %s\n",
		s.greenName(), g.Name, s.Conninfo(g, s.InventoryDatabase()), host, g.DataDir, s.GreenBinDir)
}

// greenCluster is the green server as the inventory describes it; nil
// without one.
func (s *Sandbox) greenCluster() *cluster.Cluster {
	if s.Green == nil {
		return nil
	}
	g := *s.Green
	return &cluster.Cluster{Name: s.greenName(), Order: []string{g.Name}, Nodes: map[string]*cluster.Node{
		g.Name: {Name: g.Name, Conninfo: s.Conninfo(g, s.InventoryDatabase()), Host: s.hostOf(g.Name), DataDir: g.DataDir, BinDir: s.GreenBinDir},
	}}
}
