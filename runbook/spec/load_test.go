package spec

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/steps"
)

// update rewrites the golden files of the TestInvalid* tests:
//
//	go test ./runbook/spec -run TestInvalid -update
var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// readFile returns the bytes of a testdata file, failing the test when it
// cannot be read.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// loadInventory loads an inventory under testdata/inventory; "" is none.
func loadInventory(t *testing.T, name string) *Inventory {
	t.Helper()
	if name == "" {
		return nil
	}
	path := filepath.Join("testdata", "inventory", name)
	inv, err := LoadInventory(path, readFile(t, path))
	if err != nil {
		t.Fatalf("inventory %s:\n%v", path, err)
	}
	return inv
}

// overrides parses --var arguments, failing the test on a bad one.
func overrides(t *testing.T, args ...string) []VarDecl {
	t.Helper()
	vars, err := ParseVarFlags(args)
	if err != nil {
		t.Fatal(err)
	}
	return vars
}

// planOf loads and resolves a testdata runbook.
func planOf(t *testing.T, path, inventory string, vars ...string) *Plan {
	t.Helper()
	rb, err := LoadRunbook(path, readFile(t, path))
	if err != nil {
		t.Fatalf("load %s:\n%v", path, err)
	}
	p, err := Resolve(rb, loadInventory(t, inventory), overrides(t, vars...))
	if err != nil {
		t.Fatalf("resolve %s:\n%v", path, err)
	}
	return p
}

// command returns the command of an exec action or check.
func command(t *testing.T, args map[string]any) string {
	t.Helper()
	c, ok := args["command"].(string)
	if !ok {
		t.Fatalf("no command in %v", args)
	}
	return c
}

// stepNames returns the names of steps, in order.
func stepNames(ss []*Step) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.Name
	}
	return out
}

func TestLoadValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file      string // under testdata/valid
		inventory string // under testdata/inventory; "" for none
		vars      []string
		check     func(t *testing.T, p *Plan)
	}{
		{
			file: "example.yaml",
			check: func(t *testing.T, p *Plan) {
				if got, want := stepNames(p.Steps), []string{"first", "second"}; !slices.Equal(got, want) {
					t.Errorf("steps = %q, want %q", got, want)
				}
				if got, want := command(t, p.Steps[1].ActionArgs), "echo two >> /tmp/switchover-example/log"; got != want {
					t.Errorf("second: command = %q, want %q", got, want)
				}
				if !p.Steps[1].Destructive || p.Steps[0].Destructive {
					t.Errorf("destructive = %v, %v; want false, true", p.Steps[0].Destructive, p.Steps[1].Destructive)
				}
				if p.LockName != "runbook-example" || p.Inventory != nil {
					t.Errorf("lock = %q, inventory = %v; want runbook-example and none", p.LockName, p.Inventory)
				}
			},
		},
		{
			file:      "nested_vars.yaml",
			inventory: "local.yaml",
			check: func(t *testing.T, p *Plan) {
				wantVars := map[string]string{
					"cluster":   "demo",
					"base":      "/srv/demo",
					"archive":   "/srv/demo/archive",
					"candidate": "pg2",
					"primary":   "pg1",
					"marker":    "/srv/demo/archive/pg2.ready",
				}
				for k, want := range wantVars {
					if got := p.Vars[k]; got != want {
						t.Errorf("var %s = %q, want %q", k, got, want)
					}
				}
				mark := p.Step("mark")
				if got, want := command(t, mark.ActionArgs), "touch /srv/demo/archive/pg2.ready"; got != want {
					t.Errorf("mark: command = %q, want %q", got, want)
				}
				if got := mark.ActionArgs["node"]; got != "pg2" {
					t.Errorf("mark: node = %v, want pg2", got)
				}
				if got := mark.Requires[0].Args["node"]; got != "pg1" {
					t.Errorf("mark: requires node = %v, want pg1", got)
				}
				if p.LockName != "demo" {
					t.Errorf("lock = %q, want the inventory's cluster demo", p.LockName)
				}
			},
		},
		{
			// A --var wins over the inventory, and what depends on it follows.
			file:      "nested_vars.yaml",
			inventory: "local.yaml",
			vars:      []string{"candidate=pg3", "base=/data"},
			check: func(t *testing.T, p *Plan) {
				if got, want := p.Vars["marker"], "/data/archive/pg3.ready"; got != want {
					t.Errorf("marker = %q, want %q", got, want)
				}
				if got, want := p.VarFlags, []string{"candidate", "base"}; !slices.Equal(got, want) {
					t.Errorf("var flags = %q, want %q", got, want)
				}
				if got := p.Step("prepare").ActionArgs["node"]; got != "pg3" {
					t.Errorf("prepare: node = %v, want pg3", got)
				}
			},
		},
		{
			file: "full.yaml",
			check: func(t *testing.T, p *Plan) {
				want := Defaults{Timeout: 2 * time.Minute, CheckTimeout: 3 * time.Second, PollInterval: 250 * time.Millisecond, OnFailure: "restore"}
				if p.Defaults != want {
					t.Errorf("defaults = %+v, want %+v", p.Defaults, want)
				}
				if p.PointOfNoReturn != "promote" {
					t.Errorf("point of no return = %q, want promote", p.PointOfNoReturn)
				}
				if got, want := stepNames(p.Steps), []string{"announce", "drain", "promote", "repoint", "verify"}; !slices.Equal(got, want) {
					t.Errorf("steps = %q, want %q", got, want)
				}
				onFailure := map[string]string{
					"announce": "restore",     // the default, before the point of no return
					"drain":    "restore",     // likewise
					"promote":  "restore",     // the point of no return itself can still roll back
					"repoint":  "fix-clients", // a repair section, after it
					"verify":   "",            // "stop"
				}
				for name, want := range onFailure {
					if got := p.Step(name).OnFailure; got != want {
						t.Errorf("%s: on_failure = %q, want %q", name, got, want)
					}
				}
				announce := p.Step("announce")
				if !announce.Manual || !announce.Idempotent || announce.ActionKind != "manual" || announce.Description != "tell people" {
					t.Errorf("announce = %+v, want a manual, idempotent step with its description", announce)
				}
				if announce.Timeout != 2*time.Minute {
					t.Errorf("announce: timeout = %v, want the default 2m", announce.Timeout)
				}
				drain := p.Step("drain")
				if drain.Timeout != 45*time.Second {
					t.Errorf("drain: timeout = %v, want 45s", drain.Timeout)
				}
				if s, ok := drain.Action.(*steps.Sleep); !ok || s.For != 10*time.Second {
					t.Errorf("drain: action = %#v, want a 10s sleep", drain.Action)
				}
				tcp, http := drain.Requires[0], drain.Requires[1]
				if tcp.Kind != "tcp.reachable" || tcp.Within != 30*time.Second || tcp.Every != time.Second || tcp.Timeout != 2*time.Second {
					t.Errorf("drain: tcp check = %+v, want within 30s, every 1s, timeout 2s", tcp)
				}
				if got := tcp.Args["address"]; got != "10.0.0.5:5432" {
					t.Errorf("drain: address = %v, want 10.0.0.5:5432", got)
				}
				if http.Within != 0 || http.Every != 250*time.Millisecond || http.Timeout != 3*time.Second {
					t.Errorf("drain: http check = %+v, want once with the default every and timeout", http)
				}
				if got := http.Args["status"]; got != int64(503) {
					t.Errorf("drain: status = %v (%T), want 503", got, got)
				}
				promote := p.Step("promote")
				if !promote.PointOfNoReturn || !promote.Destructive {
					t.Errorf("promote = %+v, want destructive and the point of no return", promote)
				}
				if e := promote.Ensures[0]; e.Within != time.Minute || !slices.Equal(e.Args["expect"].([]string), []string{"10.0.0.5", "10.0.0.6"}) {
					t.Errorf("promote: ensures = %+v", e)
				}
				if got := p.Step("repoint").Ensures[0].Args["min_days"]; got != int64(7) {
					t.Errorf("repoint: min_days = %v, want 7", got)
				}
				if got := stepNames(p.Rollback["restore"]); !slices.Equal(got, []string{"restore-primary"}) {
					t.Errorf("rollback restore = %q", got)
				}
				if got := stepNames(p.Repair["fix-clients"]); !slices.Equal(got, []string{"fix-clients-step"}) {
					t.Errorf("repair fix-clients = %q", got)
				}
				if got := stepNames(p.Finally); !slices.Equal(got, []string{"cleanup"}) {
					t.Errorf("finally = %q", got)
				}
				sections := map[string]Section{
					"restore-primary":  RollbackSection("restore"),
					"fix-clients-step": RepairSection("fix-clients"),
					"cleanup":          SectionFinally,
					"verify":           SectionSteps,
				}
				for name, want := range sections {
					if got := p.Step(name).Section; got != want {
						t.Errorf("%s: section = %q, want %q", name, got, want)
					}
				}
				if got := len(p.AllSteps()); got != 8 {
					t.Errorf("all steps = %d, want 8", got)
				}
			},
		},
		{
			file: "escaping.yaml",
			check: func(t *testing.T, p *Plan) {
				if got, want := command(t, p.Steps[0].ActionArgs), "echo ${HOME} operator ${who}"; got != want {
					t.Errorf("command = %q, want %q", got, want)
				}
			},
		},
		{
			// A --var changes ${who} but not the escaped $${who}.
			file: "escaping.yaml",
			vars: []string{"who=root"},
			check: func(t *testing.T, p *Plan) {
				if got, want := command(t, p.Steps[0].ActionArgs), "echo ${HOME} root ${who}"; got != want {
					t.Errorf("command = %q, want %q", got, want)
				}
			},
		},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.file] = true
		name := strings.TrimSuffix(tt.file, ".yaml")
		if len(tt.vars) > 0 {
			name += " " + strings.Join(tt.vars, " ")
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join("testdata", "valid", tt.file)
			p := planOf(t, path, tt.inventory, tt.vars...)
			if p.Runbook.File != path {
				t.Errorf("file = %q, want %q", p.Runbook.File, path)
			}
			tt.check(t, p)
		})
	}
	// Every valid runbook has a case, so none is only loaded by accident.
	entries, err := os.ReadDir(filepath.Join("testdata", "valid"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !covered[e.Name()] {
			t.Errorf("testdata/valid/%s has no case in TestLoadValid", e.Name())
		}
	}
}

// exampleFile is the first runbook of docs/runbooks.md, which shows it
// verbatim (internal/docs checks that); cmd/switchover runs it.
const exampleFile = "testdata/valid/example.yaml"

func TestResolveExample(t *testing.T) {
	t.Parallel()
	example := readFile(t, exampleFile)
	tests := []struct {
		name string
		vars []string
		dir  string
	}{
		{name: "default vars", dir: "/tmp/switchover-example"},
		{name: "dir overridden", vars: []string{"dir=/x"}, dir: "/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rb, err := LoadRunbook("example.yaml", example)
			if err != nil {
				t.Fatal(err)
			}
			if rb.Name != "example" || len(rb.Steps) != 2 || len(rb.Vars) != 1 {
				t.Fatalf("runbook = %+v", rb)
			}
			p, err := Resolve(rb, nil, overrides(t, tt.vars...))
			if err != nil {
				t.Fatal(err)
			}
			first, second := p.Steps[0], p.Steps[1]
			want := map[string]string{
				"first action":    "echo one >> " + tt.dir + "/log",
				"second requires": "test -d " + tt.dir,
				"second action":   "echo two >> " + tt.dir + "/log",
				"second ensures":  "grep -q two " + tt.dir + "/log",
			}
			got := map[string]string{
				"first action":    command(t, first.ActionArgs),
				"second requires": command(t, second.Requires[0].Args),
				"second action":   command(t, second.ActionArgs),
				"second ensures":  command(t, second.Ensures[0].Args),
			}
			for k := range want {
				if got[k] != want[k] {
					t.Errorf("%s: command = %q, want %q", k, got[k], want[k])
				}
			}
			if p.Vars["dir"] != tt.dir {
				t.Errorf("dir = %q, want %q", p.Vars["dir"], tt.dir)
			}
			if first.Destructive || !second.Destructive {
				t.Errorf("destructive = %v, %v; want false, true", first.Destructive, second.Destructive)
			}
			if first.Timeout != DefaultDefaults.Timeout || second.Requires[0].Timeout != DefaultDefaults.CheckTimeout {
				t.Errorf("timeouts = %v, %v; want the defaults", first.Timeout, second.Requires[0].Timeout)
			}
			if p.PointOfNoReturn != "" || first.OnFailure != "" {
				t.Errorf("point of no return %q, on_failure %q; want neither", p.PointOfNoReturn, first.OnFailure)
			}
		})
	}
}

func TestResolveVarFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		want    []VarDecl
		wantErr string
	}{
		{name: "none"},
		{name: "value with =", args: []string{"dir=/a=b"}, want: []VarDecl{{Name: "dir", Value: "/a=b", HasValue: true, Pos: Pos{File: "--var dir"}}}},
		{name: "empty value", args: []string{"dir="}, want: []VarDecl{{Name: "dir", HasValue: true, Pos: Pos{File: "--var dir"}}}},
		{name: "no =", args: []string{"dir"}, wantErr: `--var: "dir": want NAME=VALUE with NAME of letters, digits and _`},
		{name: "bad name", args: []string{"a-b=1", "ok=1", "1x=2"}, wantErr: "--var: \"a-b=1\": want NAME=VALUE with NAME of letters, digits and _\n" +
			"--var: \"1x=2\": want NAME=VALUE with NAME of letters, digits and _"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseVarFlags(tt.args)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want %q wrapping ErrInvalid", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// invalidSetup is how an invalid runbook is resolved, when it loads: with
// an inventory, or --var arguments. Files not listed use neither.
var invalidSetup = map[string]struct {
	inventory string
	vars      []string
}{
	"node_not_in_inventory.yaml": {inventory: "local.yaml"},
	"manager_missing.yaml":       {inventory: "local.yaml"},
	"unknown_override.yaml":      {vars: []string{"dri=/x", "dir=/y"}},
}

// generated are invalid runbooks made by the test rather than committed.
var generated = map[string]func() []byte{
	// A comment one byte past the limit: too large, but otherwise fine.
	"too_large.yaml": func() []byte {
		head := "name: big\nsteps:\n  - name: first\n    action: {exec: {command: \"true\"}}\n# "
		return []byte(head + strings.Repeat("x", MaxFileSize-len(head)) + "\n")
	},
}

// validationText checks that err is a *ValidationError wrapping ErrInvalid
// and returns its text with a final newline, as golden files hold it.
func validationText(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	var v *ValidationError
	if !errors.As(err, &v) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("error %T is not a *ValidationError wrapping ErrInvalid: %v", err, err)
	}
	if len(v.Problems) == 0 {
		t.Fatal("a ValidationError without problems")
	}
	if !slices.IsSortedFunc(v.Problems, func(a, b Problem) int {
		if a.Pos.File != b.Pos.File {
			return strings.Compare(a.Pos.File, b.Pos.File)
		}
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line - b.Pos.Line
		}
		return a.Pos.Col - b.Pos.Col
	}) {
		t.Errorf("problems are not sorted by position:\n%v", err)
	}
	return err.Error() + "\n"
}

// golden compares got with the golden file, or rewrites it under -update.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./runbook/spec -run TestInvalid -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("error differs from %s\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// checkGoldens fails for a golden file whose input is gone.
func checkGoldens(t *testing.T, dir string, inputs map[string]bool) {
	t.Helper()
	goldens, err := filepath.Glob(filepath.Join(dir, "*.golden"))
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range goldens {
		if !inputs[strings.TrimSuffix(filepath.Base(g), ".golden")+".yaml"] {
			t.Errorf("%s has no runbook or inventory beside it", g)
		}
	}
}

func TestInvalidRunbooks(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("testdata", "invalid")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	inputs := map[string]bool{}
	for _, f := range files {
		inputs[filepath.Base(f)] = true
	}
	for name := range generated {
		if inputs[name] {
			t.Fatalf("%s is both committed and generated", name)
		}
		inputs[name] = true
		files = append(files, filepath.Join(dir, name))
	}
	checkGoldens(t, dir, inputs)
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var src []byte
			if gen, ok := generated[name]; ok {
				src = gen()
			} else {
				src = readFile(t, path)
			}
			setup := invalidSetup[name]
			rb, err := LoadRunbook(path, src)
			if err == nil {
				_, err = Resolve(rb, loadInventory(t, setup.inventory), overrides(t, setup.vars...))
			}
			golden(t, strings.TrimSuffix(path, ".yaml")+".golden", validationText(t, err))
		})
	}
}

// TestInvalidManyProblems guards the promise that every problem is listed,
// not only the first: the golden file could be refreshed by accident into
// holding one line.
func TestInvalidManyProblems(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		file string
		min  int
	}{
		{file: "many_problems.yaml", min: 8},
		{file: "many_problems_resolve.yaml", min: 8},
	} {
		path := filepath.Join("testdata", "invalid", tt.file)
		rb, err := LoadRunbook(path, readFile(t, path))
		if err == nil {
			_, err = Resolve(rb, nil, nil)
		}
		var v *ValidationError
		if !errors.As(err, &v) || len(v.Problems) < tt.min {
			t.Errorf("%s: want at least %d problems, got:\n%v", tt.file, tt.min, err)
		}
	}
}
