package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/switchover/switchover/playbooks"
)

func compileSchema(t *testing.T, which string) *jsonschema.Schema {
	t.Helper()
	code, out, errOut := executeT(t, "schema", which)
	if code != 0 {
		t.Fatalf("schema %s: exit %d: %s", which, code, errOut)
	}
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
	if err != nil {
		t.Fatalf("schema %s is not JSON: %v", which, err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(which+".json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(which + ".json")
	if err != nil {
		t.Fatalf("schema %s does not compile: %v", which, err)
	}
	return s
}

// yamlToJSON turns a YAML document into the values a JSON validator takes.
func yamlToJSON(t *testing.T, src string) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal([]byte(src), &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// The schemas accept every shipped playbook and a sandbox inventory, and
// reject the typos an editor should underline.
func TestSchemas(t *testing.T) {
	t.Parallel()
	rb := compileSchema(t, "runbook")
	for _, name := range playbooks.Names() {
		src, _ := playbooks.Read(name)
		if err := rb.Validate(yamlToJSON(t, string(src))); err != nil {
			t.Errorf("playbook %s does not validate against the runbook schema: %v", name, err)
		}
	}
	for name, src := range map[string]string{
		"an unknown check":     "name: x\nsteps:\n  - name: a\n    requires:\n      - pg.rol: {node: pg1, is: primary}\n",
		"an unknown parameter": "name: x\nsteps:\n  - name: a\n    action:\n      exec: {comand: true}\n",
		"an unknown step key":  "name: x\nsteps:\n  - name: a\n    acton:\n      exec: {command: true}\n",
		"a bad enum":           "name: x\nsteps:\n  - name: a\n    requires:\n      - pg.role: {node: pg1, is: leader}\n",
	} {
		if err := rb.Validate(yamlToJSON(t, src)); err == nil {
			t.Errorf("the runbook schema accepts %s", name)
		}
	}
	inv := compileSchema(t, "inventory")
	good := `cluster: prod
vars: {primary: pg1, candidate: pg2}
nodes:
  pg1: {conninfo: "host=db1", host: {transport: ssh, address: "admin@db1", user: postgres}, data_dir: /d, bin_dir: /b}
  pg2: {conninfo: "host=db2", host: local}
pooler: {kind: pgbouncer, admin: "host=pool", database: app, config: /etc/pgbouncer/pgbouncer.ini}
`
	if err := inv.Validate(yamlToJSON(t, good)); err != nil {
		t.Errorf("a good inventory does not validate: %v", err)
	}
	if err := inv.Validate(yamlToJSON(t, "cluster: prod\nnodes:\n  pg1: {connifo: x}\n")); err == nil {
		t.Error("the inventory schema accepts a misspelt conninfo")
	}
	several := "cluster: prod\nnodes:\n  pg1: {conninfo: \"host=db1\"}\npoolers:\n  - {name: app1, admin: \"host=pool1\", database: app}\n  - {name: app2, admin: \"host=pool2\", database: app}\n"
	if err := inv.Validate(yamlToJSON(t, several)); err != nil {
		t.Errorf("an inventory with poolers: does not validate: %v", err)
	}
	green := "cluster: prod\nnodes:\n  pg1: {conninfo: \"host=db1\"}\ngreen:\n  name: prod-17\n  nodes:\n    green1: {conninfo: \"host=db9\", data_dir: /d, bin_dir: /usr/lib/postgresql/17/bin}\n"
	if err := inv.Validate(yamlToJSON(t, green)); err != nil {
		t.Errorf("an inventory with green: does not validate: %v", err)
	}
	for what, bad := range map[string]string{
		"green without nodes":       "cluster: prod\nnodes:\n  pg1: {conninfo: \"host=db1\"}\ngreen: {name: g}\n",
		"green with a pooler":       green + "  pooler: {admin: \"host=pool\"}\n",
		"both pooler: and poolers:": several + "pooler: {admin: \"host=pool\", database: app}\n",
		"a pooler without a name":   "cluster: prod\nnodes:\n  pg1: {conninfo: \"host=db1\"}\npoolers:\n  - {admin: \"host=pool1\"}\n",
	} {
		if err := inv.Validate(yamlToJSON(t, bad)); err == nil {
			t.Errorf("the inventory schema accepts %s", what)
		}
	}
	if code, _, _ := executeT(t, "schema", "plan"); code != exitUsage {
		t.Errorf("schema plan: exit %d, want %d", code, exitUsage)
	}
}

// The fleet schema accepts the documented fleet file and rejects what
// an editor should underline.
func TestFleetSchema(t *testing.T) {
	t.Parallel()
	s := compileSchema(t, "fleet")
	good := `fleet: monthly-patch
playbook: postgres-streaming-switchover
candidate: auto
vars: {}
clusters:
  - inventory: clusters/c1/inventory.yaml
    labels: {dc: a, tier: gold}
    vars: {}
  - inventory: "clusters/*/inventory.yaml"
labels:
  - match: {tier: gold}
    vars: {max_lag: 8MB}
waves:
  - {name: canary, clusters: 1}
  - {name: second, percent: 30}
  - {name: dc-b, select: {dc: b}}
  - {name: rest}
concurrency: {max: 2, per_label: {dc: 1}}
halt: {lost_commits: 0, window_over: 2s, client_errors_over: 0}
window: {not_before: "2026-12-08T22:00:00Z", not_after: "2026-12-09T02:00:00Z"}
`
	if err := s.Validate(yamlToJSON(t, good)); err != nil {
		t.Errorf("the documented fleet file does not validate: %v", err)
	}
	base := "fleet: f\nplaybook: p\nclusters: [{inventory: i.yaml}]\n"
	for what, bad := range map[string]string{
		"an unknown key":         base + "concurency: {max: 2}\n",
		"a wave with two kinds":  base + "waves: [{name: w, clusters: 1, percent: 5}]\n",
		"a wave of 0":            base + "waves: [{name: w, clusters: 0}]\n",
		"percent over 100":       base + "waves: [{name: w, percent: 101}]\n",
		"a cluster without path": "fleet: f\nplaybook: p\nclusters: [{labels: {dc: a}}]\n",
		"no clusters":            "fleet: f\nplaybook: p\n",
		"a bad duration":         base + "halt: {window_over: soon}\n",
	} {
		if err := s.Validate(yamlToJSON(t, bad)); err == nil {
			t.Errorf("the fleet schema accepts %s", what)
		}
	}
}
