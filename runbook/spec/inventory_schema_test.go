package spec

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/switchover/switchover/internal/cluster"
)

func TestLoadInventory(t *testing.T) {
	t.Parallel()
	inv := loadInventory(t, "local.yaml")
	if inv.Cluster.Name != "demo" {
		t.Errorf("cluster = %q, want demo", inv.Cluster.Name)
	}
	if got, want := inv.NodeOrder(), []string{"pg1", "pg2", "pg3"}; !slices.Equal(got, want) {
		t.Errorf("nodes = %q, want %q", got, want)
	}
	pg2 := inv.Cluster.Nodes["pg2"]
	if pg2.Host.Transport != "local" || pg2.DataDir != "/var/lib/postgresql/pg2" || pg2.BinDir != "/usr/lib/postgresql/17/bin" || pg2.Conninfo != "host=/tmp port=5433 dbname=postgres" {
		t.Errorf("pg2 = %+v", pg2)
	}
	if ps := inv.Cluster.Poolers; len(ps) != 1 || ps[0].Name != cluster.DefaultPoolerName || ps[0].Kind != "pgbouncer" || ps[0].Database != "app" || ps[0].Host.Transport != "local" {
		t.Errorf("poolers = %+v, want the one pooler: named %q", ps, cluster.DefaultPoolerName)
	}
	if len(inv.Vars) != 2 || inv.Vars[0].Name != "primary" || inv.Vars[0].Value != "pg1" {
		t.Errorf("vars = %+v", inv.Vars)
	}
	if ex, err := inv.Cluster.Executor("pg3"); err != nil || ex == nil {
		t.Errorf("executor pg3 = %v, %v", ex, err)
	}

	fronted := loadInventory(t, "poolers.yaml")
	if got := fronted.Cluster.PoolerNames(); !slices.Equal(got, []string{"app1", "app2"}) {
		t.Errorf("poolers = %q, want app1, app2 in the file's order", got)
	} else if p := fronted.Cluster.PoolerNamed("app2"); p.Kind != "" || p.Host.Transport != "ssh" || p.Database != "app" || fronted.Cluster.ClientPooler().Name != "app1" {
		t.Errorf("app2 = %+v, client pooler %+v", p, fronted.Cluster.ClientPooler())
	}

	min := loadInventory(t, "minimal.yaml")
	if min.Cluster.Name != "tiny" || len(min.Cluster.Nodes) != 1 || len(min.Cluster.Poolers) != 0 || min.Cluster.Manager != nil {
		t.Errorf("minimal = %+v", min.Cluster)
	}
}

func TestInvalidInventories(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("testdata", "invalid-inventory")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	inputs := map[string]bool{}
	for _, f := range files {
		inputs[filepath.Base(f)] = true
	}
	checkGoldens(t, dir, inputs)
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			_, err := LoadInventory(path, readFile(t, path))
			golden(t, strings.TrimSuffix(path, ".yaml")+".golden", validationText(t, err))
		})
	}
}
