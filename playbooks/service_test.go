package playbooks_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/playbooks"
	"github.com/switchover/switchover/playbooks/playbookstest"
	"github.com/switchover/switchover/runbook"
	"github.com/switchover/switchover/runbook/spec"
)

// serviceInventory writes the sandbox's inventory with every node named by
// a libpq service (conninfo "service=pgN") and a service file that defines
// them, and returns both paths.
func serviceInventory(t *testing.T, sb *sandbox.Sandbox, dir string) (inventory, services string) {
	t.Helper()
	b, err := os.ReadFile(sb.Inventory())
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	var svc strings.Builder
	for _, n := range sb.Nodes {
		old := fmt.Sprintf("%q", sb.Conninfo(n, "postgres"))
		if !strings.Contains(src, old) {
			t.Fatalf("the sandbox inventory has no %s:\n%s", old, src)
		}
		src = strings.Replace(src, old, fmt.Sprintf("%q", "service="+n.Name), 1)
		fmt.Fprintf(&svc, "[%s]\nhost=127.0.0.1\nport=%d\nuser=postgres\ndbname=postgres\nsslmode=disable\nconnect_timeout=5\n\n", n.Name, n.Port)
	}
	services = filepath.Join(dir, "pg_service.conf")
	inventory = filepath.Join(t.TempDir(), "inventory.yaml")
	for path, text := range map[string]string{services: svc.String(), inventory: src} {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return inventory, services
}

// runWith runs the shipped streaming playbook scripted against inventory.
func runWith(t *testing.T, inventory string, vars ...string) (*playbookstest.Events, error) {
	t.Helper()
	src, _ := playbooks.Read(playbookstest.Streaming)
	rb, err := spec.LoadRunbook("playbook:"+playbookstest.Streaming, src)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(inventory)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := spec.LoadInventory(inventory, b)
	if err != nil {
		t.Fatal(err)
	}
	decls, err := spec.ParseVarFlags(vars)
	if err != nil {
		t.Fatal(err)
	}
	p, err := spec.Resolve(rb, inv, decls)
	if err != nil {
		t.Fatal(err)
	}
	ev := &playbookstest.Events{}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, err = runbook.Run(ctx, p, runbook.Options{Yes: true, Observer: ev, JournalDir: t.TempDir()})
	return ev, err
}

// wantPrimary fails unless primary is the only primary, every other node
// streams from it, and a write through PgBouncer lands on it.
func wantPrimary(t *testing.T, sb *sandbox.Sandbox, primary sandbox.Node) {
	t.Helper()
	for _, s := range sb.Status(context.Background()) {
		switch {
		case s.Err != nil:
			t.Fatalf("%s does not answer: %v", s.Node.Name, s.Err)
		case s.Node.Name == primary.Name && s.State.Role != pg.RolePrimary:
			t.Fatalf("%s is %s, want the primary (%s)", s.Node.Name, s.State.Role, sandboxtest.Topology(t, sb))
		case s.Node.Name != primary.Name && (s.State.Role != pg.RoleStandby || !strings.HasSuffix(s.State.Upstream, ":"+strconv.Itoa(primary.Port))):
			t.Fatalf("%s is %s streaming from %q, want a standby of %s (%s)", s.Node.Name, s.State.Role, s.State.Upstream, primary.Name, sandboxtest.Topology(t, sb))
		}
	}
	if got := sandboxtest.WriteThroughPooler(t, sb); got != primary.Port {
		t.Fatalf("the pooler wrote to port %d, want %s (%d)", got, primary.Name, primary.Port)
	}
}

// unsetenv removes an environment variable for the test, and puts it back
// after. Set to "" it would not do: the servers the run starts inherit the
// environment, and their libpq takes PGSERVICE="" as a service named "".
func unsetenv(t *testing.T, key string) {
	t.Helper()
	t.Setenv(key, "") // refuses a parallel test, and restores the old value
	os.Unsetenv(key)
}

// TestStreamingSwitchoverByService switches a sandbox whose inventory
// names every node by a libpq service there and back (pg1 -> pg2 -> pg1),
// with the canary: first with the services in the file PGSERVICEFILE
// names, then in PGSYSCONFDIR's pg_service.conf alone, where psql finds
// them too. Each time the pooler routes to the new primary, its entry
// names the new primary's host and port (not a service), and no
// acknowledged commit is lost. Not parallel: it sets the environment.
func TestStreamingSwitchoverByService(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	pg1, pg2 := sandboxtest.Node(t, sb, "pg1"), sandboxtest.Node(t, sb, "pg2")
	unsetenv(t, "PGSERVICE")
	for _, how := range []string{"PGSERVICEFILE", "PGSYSCONFDIR"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			inventory, services := serviceInventory(t, sb, dir)
			if how == "PGSERVICEFILE" {
				t.Setenv("PGSERVICEFILE", services)
				t.Setenv("PGSYSCONFDIR", filepath.Join(dir, "none"))
			} else {
				unsetenv(t, "PGSERVICEFILE")
				t.Setenv("PGSYSCONFDIR", dir)
			}
			for _, step := range []struct{ from, to sandbox.Node }{{pg1, pg2}, {pg2, pg1}} {
				ev, err := runWith(t, inventory, "primary="+step.from.Name, "candidate="+step.to.Name)
				if err != nil {
					t.Fatalf("switchover %s -> %s: %v\n%s", step.from.Name, step.to.Name, err, ev.Text())
				}
				wantPrimary(t, sb, step.to)
				if entry := sandboxtest.PoolerTarget(t, sb); !strings.Contains(entry, "port="+strconv.Itoa(step.to.Port)) || strings.Contains(entry, "service") {
					t.Fatalf("after %s -> %s the pooler's entry is %q", step.from.Name, step.to.Name, entry)
				}
				facts := ev.Facts()
				if acked, _ := strconv.Atoi(facts["canary.acked"]); facts["canary.lost"] != "0" || acked == 0 {
					t.Fatalf("%s -> %s: canary acked %q, lost %q; want some acknowledged and 0 lost\n%s",
						step.from.Name, step.to.Name, facts["canary.acked"], facts["canary.lost"], ev.Text())
				}
				t.Logf("%s -> %s by %s: canary acked %s, lost 0, longest write gap %s ms",
					step.from.Name, step.to.Name, how, facts["canary.acked"], facts["canary.window_ms"])
			}
		})
		if t.Failed() {
			return
		}
	}
}
