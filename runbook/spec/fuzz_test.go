package spec

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// addSeeds adds every file of the testdata directories as a seed.
func addSeeds(f *testing.F, dirs ...string) {
	f.Helper()
	for _, dir := range dirs {
		entries, err := os.ReadDir(filepath.Join("testdata", dir))
		if err != nil {
			f.Fatal(err)
		}
		for _, e := range entries {
			if !e.Type().IsRegular() {
				continue
			}
			b, err := os.ReadFile(filepath.Join("testdata", dir, e.Name()))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
}

// checkInvalid fails unless err is a *ValidationError with problems that
// wraps ErrInvalid: the CLI maps that to exit 2 and prints each problem.
func checkInvalid(t *testing.T, what string, err error) {
	t.Helper()
	var v *ValidationError
	if !errors.As(err, &v) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("%s: error %T is not a *ValidationError wrapping ErrInvalid: %v", what, err, err)
	}
	if len(v.Problems) == 0 {
		t.Fatalf("%s: a ValidationError without problems", what)
	}
	for _, p := range v.Problems {
		if p.Msg == "" {
			t.Fatalf("%s: a problem without a message at %s", what, p.Pos)
		}
	}
}

// FuzzLoadRunbook feeds the loader and the resolver arbitrary bytes: they
// must never panic, and must report every failure as a validation error.
func FuzzLoadRunbook(f *testing.F) {
	addSeeds(f, "valid", "invalid", "inventory", "invalid-inventory")
	for _, s := range []string{
		"",
		"name: x\nsteps: [{name: a, action: {exec: {command: \"${a}\"}}}]\n",
		"name: x\nvars: {a: \"${b}\", b: \"${a}${c}\", c: \"$${a}\"}\nsteps: [{name: a, requires: [{exec: {command: \"${a}\"}}]}]\n",
		"name: x\nsteps:\n- name: a\n  point_of_no_return: true\n  on_failure: r\n  requires: [{tcp.reachable: {address: \"h:1\", within: 1s, every: 1ms}}]\nrollback: {r: [{name: b, action: {sleep: {for: 1s}}}]}\nrepair: {r: [{name: c, action: {manual: {text: t}}}]}\n",
		"name: x\nsteps:\n- &a {name: a, action: *a}\n",
		"name: x\nsteps:\n- <<: {name: a}\n",
		"name: x\nsteps:\n- name: a\n  action: {exec: {command: [\"a\", {b: c}], node: [x]}}\n",
		"{? [a]: b}: c\n",
		"name: x\nsteps: [{name: a, ensures: [{dns.resolves: {name: n, expect: [\"1.2.3.4\", x]}}, {http.ok: {url: \"http://h/\", body: \"(\"}}, {tls.certificate: {address: h, min_days: -1}}]}]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		rb, err := LoadRunbook("fuzz.yaml", src)
		if err != nil {
			checkInvalid(t, "load", err)
			if rb != nil {
				// The shape is wrong, but what was read must still be safe
				// to resolve: a caller may want every problem at once.
				_, _ = Resolve(rb, nil, nil)
			}
			return
		}
		p, err := Resolve(rb, nil, nil)
		if err != nil {
			checkInvalid(t, "resolve", err)
			return
		}
		if len(p.Steps) == 0 {
			t.Fatal("a plan without steps")
		}
		for _, s := range p.AllSteps() {
			if s.Action == nil && len(s.Requires) == 0 && len(s.Ensures) == 0 {
				t.Fatalf("step %q does nothing", s.Name)
			}
		}
	})
}

// FuzzLoadInventory is FuzzLoadRunbook for inventories.
func FuzzLoadInventory(f *testing.F) {
	addSeeds(f, "inventory", "invalid-inventory", "valid")
	f.Add([]byte("cluster: c\nnodes: {a: {host: {transport: [x]}}, b: {host: ~}}\npooler: {host: ssh}\nmanager: {kind: patroni, urls: [~, [x]]}\n"))
	f.Add([]byte("cluster: c\ngreen: {name: g, nodes: {a: {conninfo: x}, b: ~}}\nnodes: {a: {conninfo: y}}\ngreen: ~\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		inv, err := LoadInventory("fuzz.yaml", src)
		if err != nil {
			checkInvalid(t, "load", err)
			return
		}
		if len(inv.NodeOrder()) != len(inv.Cluster.Nodes) {
			t.Fatalf("node order %q does not match nodes %v", inv.NodeOrder(), inv.Cluster.NodeNames())
		}
		if g := inv.Cluster.Green; g != nil {
			for name := range g.Nodes {
				if inv.Cluster.Nodes[name] != nil {
					t.Fatalf("node %q is in both clusters", name)
				}
			}
		}
	})
}

// FuzzLoadFleet feeds the fleet loader arbitrary bytes in a directory of
// its own holding two inventories: it must never panic, and must report
// every failure as a validation error. Inputs naming paths outside that
// directory (a slash, a backslash) are left out: the loader reads the
// files a fleet names.
func FuzzLoadFleet(f *testing.F) {
	for _, s := range []string{
		"",
		"fleet: f\nplaybook: pb\nclusters: [{inventory: a.yaml}, {inventory: \"b*.yaml\", labels: {dc: b}}]\n",
		"fleet: f\nplaybook: pb\nclusters: [{inventory: \"*.yaml\"}]\nwaves: [{name: c, clusters: 1}, {name: p, percent: 50}, {name: s, select: {dc: b}}, {name: r}]\n",
		"fleet: f\nplaybook: pb\nclusters: [{inventory: a.yaml, vars: {x: 1}}]\nlabels: [{match: {dc: a}, vars: {y: ~}}]\nconcurrency: {max: 0, per_label: {dc: x}}\nhalt: {window_over: 1x, client_errors_over: -1}\nwindow: {not_before: x, not_after: \"2026-12-09T02:00:00Z\"}\n",
		"fleet: f\nplaybook: pb\nclusters: [{inventory: a.yaml}, {inventory: a.yaml}]\nwaves: [{name: a, clusters: 1, percent: 2}, {name: a}]\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	for name, cluster := range map[string]string{"a.yaml": "a", "b1.yaml": "b"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("cluster: "+cluster+"\nnodes: {pg1: {conninfo: \"host=h\"}}\n"), 0o600); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		if bytes.ContainsAny(src, `/\`) {
			t.Skip("names a path outside the fleet's directory")
		}
		fl, err := LoadFleet(filepath.Join(dir, "fleet.yaml"), src, []string{"pb"})
		if err != nil {
			checkInvalid(t, "load", err)
			return
		}
		for _, c := range fl.Clusters {
			if c.Wave < 0 || c.Wave >= len(fl.Waves) {
				t.Fatalf("cluster %s in wave %d of %d", c.Name, c.Wave, len(fl.Waves))
			}
		}
	})
}
