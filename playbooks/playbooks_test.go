package playbooks_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/switchover/switchover/playbooks"
	"github.com/switchover/switchover/runbook/spec"
)

// testInventory stands in for the operator's inventory for the playbooks
// that need one: three nodes on this machine, the first the primary.
const testInventory = `cluster: test
vars:
  primary: pg1
  candidate: pg2
nodes:
  pg1: {host: local, data_dir: /srv/pg1, bin_dir: /usr/lib/postgresql/17/bin, conninfo: "port=5432"}
  pg2: {host: local, data_dir: /srv/pg2, bin_dir: /usr/lib/postgresql/17/bin, conninfo: "port=5433"}
  pg3: {host: local, data_dir: /srv/pg3, bin_dir: /usr/lib/postgresql/17/bin, conninfo: "port=5434"}
manager: {kind: patroni, urls: ["http://127.0.0.1:8008"]}
`

// greenSection is the green cluster a logical move's playbooks need
// beside testInventory's, and the variables naming both primaries.
const greenSection = `green:
  name: test-green
  nodes:
    green1: {host: local, data_dir: /srv/green1, bin_dir: /usr/lib/postgresql/17/bin, conninfo: "port=5440"}
`

// logicalVars are the variables the logical playbooks need, by playbook.
var logicalVars = map[string][]string{
	"logical-prepare": {"from=pg1", "to=green1"},
	"logical-cutover": {"from=pg1", "to=green1"},
	"logical-cleanup": {"blue=pg1", "green=green1"},
}

// needsInventory reports whether a runbook names nodes or leaves variables
// for an inventory to give, so that it cannot resolve without one.
func needsInventory(rb *spec.Runbook, src []byte) bool {
	for _, v := range rb.Vars {
		if !v.HasValue {
			return true
		}
	}
	return strings.Contains(string(src), "node:")
}

// TestPlaybooksLoad: every shipped playbook validates, and resolves with
// its default variables and no inventory when it needs none, or with a
// three-node inventory when it does.
func TestPlaybooksLoad(t *testing.T) {
	t.Parallel()
	names := playbooks.Names()
	if len(names) == 0 {
		t.Fatal("no playbooks are shipped")
	}
	if !slices.Contains(names, "example") {
		t.Errorf("playbooks = %q, want example among them", names)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src, ok := playbooks.Read(name)
			if !ok {
				t.Fatalf("Read(%q) found nothing, though Names lists it", name)
			}
			if again, ok := playbooks.Read(name + ".yaml"); !ok || string(again) != string(src) {
				t.Errorf("Read(%q) differs from Read(%q)", name+".yaml", name)
			}
			rb, err := spec.LoadRunbook("playbook:"+name, src)
			if err != nil {
				t.Fatalf("load:\n%v", err)
			}
			if rb.Name != name {
				t.Errorf("name = %q, want the file's name %q", rb.Name, name)
			}
			if rb.Description == "" {
				t.Error("no description: `switchover playbooks` would list it without one")
			}
			var inv *spec.Inventory // the example and its kind need none
			if needsInventory(rb, src) {
				src := testInventory
				if strings.HasPrefix(name, "repmgr-") { // a repmgr cluster's playbook
					src = strings.Replace(src, `{kind: patroni, urls: ["http://127.0.0.1:8008"]}`, `{kind: repmgr, configs: {pg1: /etc/repmgr.conf}}`, 1)
				}
				if strings.HasPrefix(name, "pg-auto-failover") {
					src = strings.Replace(src, `manager: {kind: patroni, urls: ["http://127.0.0.1:8008"]}`,
						`manager: {kind: pg_auto_failover, monitor: "host=127.0.0.1 port=5431 user=autoctl_node dbname=pg_auto_failover"}`, 1)
				}
				if strings.HasPrefix(name, "logical-") {
					src += greenSection
				}
				inv, err = spec.LoadInventory("test-inventory.yaml", []byte(src))
				if err != nil {
					t.Fatal(err)
				}
			}
			var vars []spec.VarDecl
			if v, ok := logicalVars[name]; ok {
				if vars, err = spec.ParseVarFlags(v); err != nil {
					t.Fatal(err)
				}
			}
			p, err := spec.Resolve(rb, inv, vars)
			if err != nil {
				t.Fatalf("resolve:\n%v", err)
			}
			if len(p.Steps) == 0 {
				t.Error("no steps")
			}
			if inv == nil && p.LockName != "runbook-"+name {
				t.Errorf("lock = %q, want runbook-%s", p.LockName, name)
			}
		})
	}
}

// TestPlaybooksReadUnknown: a name that is not shipped reads as nothing.
func TestPlaybooksReadUnknown(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"", "nope", "../playbooks", "example.yml"} {
		if _, ok := playbooks.Read(name); ok {
			t.Errorf("Read(%q) found a playbook", name)
		}
	}
}
