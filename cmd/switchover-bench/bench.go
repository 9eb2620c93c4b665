// The benchmark measures what the design calls the measures that matter, on
// real sandbox clusters: the write-unavailability window a client sees, the
// client errors, the acknowledged commits lost (must be 0), the time a
// switchover takes and the time spent in preconditions, and how the
// preflight grows with the number of standbys. `make bench` runs it; it is
// not a user command.
//
// It brings up a sandbox (pg1 primary, two standbys, PgBouncer in front),
// times the preflight alone, then runs Runs round trips pg1 -> pg2 -> pg1
// of the shipped streaming playbook with the canary going through PgBouncer
// ("pooler"), and Runs more with the inventory's pooler: section removed,
// the canary writing through a multi-host read-write connection string
// ("direct"), then Runs more on hosts of their own reached over ssh
// ("ssh", when root: see ssh.go). Every switchover loads the shipped playbook and the sandbox's
// inventory through package runbook and runs with the engine, approved as
// --yes approves, as a user's scripted run does. Then, when Patroni is
// installed, it compares the patroni-switchover playbook with plain
// patronictl, and the same playbook through HAProxy (sandbox up --router
// haproxy) driving it beside HAProxy left to its health checks alone (see
// haproxy.go); when repmgr and pg_auto_failover are installed, it compares
// their playbooks with the managers' own switchover commands (repmgr.go,
// pgaf.go). Last it times the preflight on a sandbox with eight standbys.
// Every sandbox is brought down at the end, also on a failure or an
// interrupt. The last line printed is one JSON object with the figures.

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/runbook/spec"
)

// Playbook is the shipped playbook the benchmark measures.
const Playbook = "postgres-streaming-switchover"

// DownTimeout bounds bringing one sandbox down, also after an interrupt.
const DownTimeout = 90 * time.Second

// Bounds on every wait, so that a stuck server stops the benchmark instead
// of hanging it.
const (
	upTimeout         = 4 * time.Minute
	switchoverTimeout = 3 * time.Minute
	preflightTimeout  = time.Minute
)

// Options are what `make bench` sets.
type Options struct {
	Runs     int  // round trips pg1 -> pg2 -> pg1 per mode, and preflight runs per sandbox
	PortBase int  // PgBouncer's port, node i on PortBase+i; 0 picks free ports
	Keep     bool // leave the last sandbox up and the journals and inventories on disk
	// Out receives the report; its last line is the JSON object. Log
	// receives the sandboxes' progress and notes on failures.
	Out, Log io.Writer
}

// bench is one benchmark: its work directory and the sandbox that is up.
type bench struct {
	o        Options
	out, log io.Writer
	work     string // /tmp/switchover-bench-*: sandboxes, journals, inventories
	journal  string
	rb       *spec.Runbook
	sb       *sandbox.Sandbox // the sandbox that is up, nil when none
	router   string           // the router the next sandbox gets instead of PgBouncer: "" or sandbox.RouterHAProxy
}

// Run runs the whole benchmark and prints its report, the JSON line last.
// The sandboxes it brings up are down when it returns, unless o.Keep.
func Run(ctx context.Context, o Options) (err error) {
	if o.Runs < 1 {
		return fmt.Errorf("bench: runs must be at least 1, not %d", o.Runs)
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	rb, err := loadPlaybook(Playbook)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "switchover-bench-")
	if err != nil {
		return err
	}
	// The servers may run as another user (postgres, when we are root):
	// they must reach their directories inside.
	if err := os.Chmod(work, 0o755); err != nil {
		return err
	}
	b := &bench{o: o, out: o.Out, log: o.Log, work: work, journal: filepath.Join(work, "journal"), rb: rb}
	defer func() {
		if derr := b.finish(err != nil); derr != nil && err == nil {
			err = derr
		}
	}()
	if err := os.Mkdir(b.journal, 0o700); err != nil {
		return err
	}
	fmt.Fprintf(b.out, "switchover-bench: %s, %s per mode; work directory %s\n", Playbook, plural(o.Runs, "round trip"), work)

	if err := b.up(ctx, 2, ""); err != nil {
		return err
	}
	pre2, err := b.preflight(ctx)
	if err != nil {
		return err
	}
	direct, err := b.directInventory()
	if err != nil {
		return err
	}
	fmt.Fprintln(b.out)
	var all []*switchover
	header(b.out)
	for _, m := range []struct{ mode, inventory string }{{modePooler, b.sb.Inventory()}, {modeDirect, direct}} {
		for i := 1; i <= o.Runs; i++ {
			for _, d := range [][2]string{{"pg1", "pg2"}, {"pg2", "pg1"}} {
				s, err := b.switchover(ctx, b.rb, m.mode, m.inventory, i, d[0], d[1])
				if err != nil {
					return err
				}
				s.print(b.out)
				all = append(all, s)
			}
		}
	}
	// The pooler mode again while pgbench keeps the pooler busy (load.go).
	loaded, load, err := b.underLoad(ctx)
	all = append(all, loaded...)
	if err != nil {
		return err
	}
	if err := b.down(); err != nil {
		return err
	}

	sshRows, sshSkip, err := b.sshMode(ctx)
	all = append(all, sshRows...)
	if err != nil {
		return err
	}
	// Two PgBouncers in front, switched together (poolers.go).
	two, err := b.twoPoolers(ctx)
	if err != nil {
		return err
	}
	// The blue/green cutover by logical replication, both ways (logical.go).
	lg, err := b.logical(ctx)
	if err != nil {
		return err
	}

	pat, err := b.patroni(ctx)
	if err != nil {
		return err
	}
	hx, err := b.haproxy(ctx)
	if err != nil {
		return err
	}
	rm, err := b.repmgrBench(ctx)
	if err != nil {
		return err
	}
	af, err := b.pgaf(ctx)
	if err != nil {
		return err
	}

	if err := b.up(ctx, 8, ""); err != nil {
		return err
	}
	pre8, err := b.preflight(ctx)
	if err != nil {
		return err
	}
	// The pooler mode with 8 standbys: what the standbys cost the window.
	for i := 1; i <= o.Runs; i++ {
		for _, d := range [][2]string{{"pg1", "pg2"}, {"pg2", "pg1"}} {
			s, err := b.switchover(ctx, b.rb, modeEight, b.sb.Inventory(), i, d[0], d[1])
			if err != nil {
				return err
			}
			s.print(b.out)
			all = append(all, s)
		}
	}
	if o.Keep {
		b.keepNote(b.out)
	} else if err := b.down(); err != nil {
		return err
	}
	fmt.Fprintln(b.out)
	var extras []extraRow
	if two != nil {
		extras = append(extras, two)
	}
	if hx != nil {
		extras = append(extras, hx)
	}
	extras = append(extras, lg)
	extras = append(extras, rm, af)
	return report(b.out, o.Runs, all, pre2, pre8, pat, load, sshSkip, extras...)
}

// up brings up a sandbox with n standbys in the work directory, under a
// manager: "" for plain streaming replication, sandbox.ManagerPatroni for
// Patroni and etcd.
func (b *bench) up(ctx context.Context, standbys int, manager string) error {
	dir := filepath.Join(b.work, fmt.Sprintf("sandbox-%d", standbys))
	what := ""
	if manager != "" {
		dir = filepath.Join(b.work, fmt.Sprintf("sandbox-%s-%d", manager, standbys))
		what = ", managed by " + manager
	}
	front := "PgBouncer"
	if b.router != "" {
		dir, front = dir+"-"+b.router, b.router
	}
	fmt.Fprintf(b.out, "\n== sandbox up: pg1 primary, %d standbys, %s in front%s (%s)\n", standbys, front, what, dir)
	uctx, cancel := context.WithTimeout(ctx, upTimeout)
	defer cancel()
	start := time.Now()
	sb, err := sandbox.Up(uctx, sandbox.Options{Dir: dir, PortBase: b.o.PortBase, Standbys: standbys, Manager: manager, Router: b.router,
		Log: func(format string, args ...any) { fmt.Fprintf(b.log, "  sandbox: "+format+"\n", args...) }})
	if err != nil {
		return fmt.Errorf("sandbox up (%d standbys): %w", standbys, err)
	}
	b.sb = sb
	fmt.Fprintf(b.out, "   up in %s: %s on 127.0.0.1:%d, nodes on %d-%d\n",
		time.Since(start).Round(time.Millisecond), front, sb.PortBase, sb.PortBase+1, sb.PortBase+len(sb.Nodes))
	return nil
}

// down brings the sandbox that is up down.
func (b *bench) down() error {
	if b.sb == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), DownTimeout)
	defer cancel()
	sb := b.sb
	b.sb = nil
	if err := sb.Down(ctx); err != nil {
		return fmt.Errorf("sandbox down %s: %w (its processes may still run: `switchover sandbox down --dir %s`)", sb.Dir, err, sb.Dir)
	}
	return nil
}

// finish brings down what is still up and removes the work directory,
// unless -keep asks to leave them for a look.
func (b *bench) finish(failed bool) error {
	if b.o.Keep {
		if failed {
			b.keepNote(b.log)
		}
		return nil
	}
	wasUp := b.sb != nil
	err := b.down()
	if err == nil {
		err = os.RemoveAll(b.work)
	}
	if failed && wasUp && err == nil {
		fmt.Fprintln(b.log, "switchover-bench: the sandbox was brought down (run with -keep to leave it up for a look)")
	}
	return err
}

// keepNote says what -keep left behind.
func (b *bench) keepNote(w io.Writer) {
	if b.sb != nil {
		fmt.Fprintf(w, "-keep: the sandbox stays up in %s; `switchover sandbox down --dir %s` brings it down\n", b.sb.Dir, b.sb.Dir)
	}
	fmt.Fprintf(w, "-keep: journals and inventories stay in %s\n", b.work)
}

// directInventory writes a copy of the sandbox's inventory without its
// pooler: section, so that the canary writes through a multi-host
// read-write connection string and the pooler steps do nothing.
func (b *bench) directInventory() (string, error) {
	src, err := os.ReadFile(b.sb.Inventory())
	if err != nil {
		return "", err
	}
	out, err := withoutPooler(src)
	if err != nil {
		return "", fmt.Errorf("%s: %w", b.sb.Inventory(), err)
	}
	path := filepath.Join(b.work, "inventory-direct.yaml")
	return path, os.WriteFile(path, out, 0o644)
}

// withoutPooler is an inventory without its pooler: section.
func withoutPooler(src []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("not a mapping")
	}
	root := doc.Content[0]
	found := false
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "pooler" {
			root.Content = append(root.Content[:i], root.Content[i+2:]...)
			found = true
			break
		}
	}
	if !found {
		return nil, errors.New("no pooler: section; the pooler mode needs one")
	}
	var out strings.Builder
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return []byte(out.String()), nil
}
