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

// The green section: a second cluster whose nodes are in the format of the
// cluster's own, reached by name, and left out of the cluster's walk.
func TestLoadInventoryGreen(t *testing.T) {
	t.Parallel()
	inv := loadInventory(t, "green.yaml")
	g := inv.Cluster.Green
	if g == nil {
		t.Fatal("no green cluster")
	}
	if g.Name != "blue-17" || !slices.Equal(g.Order, []string{"green1", "green2"}) || len(g.Nodes) != 2 {
		t.Errorf("green = %q with %q, want blue-17 with green1, green2", g.Name, g.Order)
	}
	g1 := g.Nodes["green1"]
	if g1.Host.Transport != "ssh" || g1.Host.User != "postgres" || g1.DataDir != "/var/lib/postgresql/17/main" || g1.BinDir != "/usr/lib/postgresql/17/bin" || g1.Conninfo != "host=10.0.1.1 port=5432 dbname=postgres" {
		t.Errorf("green1 = %+v", g1)
	}
	if got := inv.NodeOrder(); !slices.Equal(got, []string{"pg1", "pg2"}) {
		t.Errorf("NodeOrder = %q, want blue's only", got)
	}
	if got := inv.Cluster.NodeOrder(); !slices.Equal(got, []string{"pg1", "pg2"}) {
		t.Errorf("Cluster.NodeOrder = %q, want blue's only", got)
	}
	if n, ok := inv.Cluster.Node("green2"); !ok || n.Name != "green2" {
		t.Errorf("Cluster.Node(green2) = %v, %v", n, ok)
	}
	if loadInventory(t, "local.yaml").Cluster.Green != nil {
		t.Error("an inventory without green: has a green cluster")
	}
}

// A node parameter may name a green node, given directly or through a
// variable; a name of neither cluster is refused with both lists.
func TestGreenNodeParameters(t *testing.T) {
	t.Parallel()
	inv := loadInventory(t, "green.yaml")
	src := `name: green-nodes
steps:
  - name: on-green
    requires:
      - exec: {command: "true", node: green2}
    action:
      exec: {command: "echo cut over", node: "${candidate}"}
`
	rb, err := LoadRunbook("green-nodes.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Resolve(rb, inv, nil)
	if err != nil {
		t.Fatalf("resolve with green nodes: %v", err)
	}
	if got := p.Steps[0].ActionArgs["node"]; got != "green1" {
		t.Errorf("action node = %v, want green1 (${candidate})", got)
	}
	_, err = Resolve(rb, inv, overrides(t, "candidate=green9"))
	text := validationText(t, err)
	if want := `node "green9" is not in inventory testdata/inventory/green.yaml (nodes: pg1, pg2; green: green1, green2)`; !strings.Contains(text, want) {
		t.Errorf("resolve with candidate=green9:\n%s\nwant it to say %s", text, want)
	}
	if !strings.Contains(text, "green-nodes.yaml:7:") {
		t.Errorf("resolve with candidate=green9:\n%s\nwant the parameter's position", text)
	}
}
