package spec

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fleetDir writes inventories for clusters c1..cN under dir/clusters/cI/
// (cN's cluster name given by names when set) and returns dir.
func fleetDir(t *testing.T, n int, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for i := 1; i <= n; i++ {
		name := "c" + string(rune('0'+i))
		if i <= len(names) {
			name = names[i-1]
		}
		d := filepath.Join(dir, "clusters", "c"+string(rune('0'+i)))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		inv := "cluster: " + name + "\nnodes:\n  pg1:\n    conninfo: host=127.0.0.1 port=5432\n  pg2:\n    conninfo: host=127.0.0.1 port=5433\n"
		if err := os.WriteFile(filepath.Join(d, "inventory.yaml"), []byte(inv), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var shippedForTests = []string{"postgres-streaming-switchover", "patroni-switchover"}

func loadFleetText(t *testing.T, dir, src string) error {
	t.Helper()
	path := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFleet(path, []byte(src), shippedForTests)
	return err
}

func TestLoadFleet(t *testing.T) {
	t.Parallel()
	dir := fleetDir(t, 4)
	src := `fleet: monthly-patch
playbook: postgres-streaming-switchover
vars: {max_lag: 8MB, stop_mode: fast}
clusters:
  - inventory: clusters/c1/inventory.yaml
    labels: {dc: a, tier: gold}
    vars: {stop_mode: smart}
  - inventory: clusters/c[2-4]/inventory.yaml
    labels: {dc: b}
labels:
  - match: {tier: gold}
    vars: {max_lag: 1MB, stop_mode: immediate}
waves:
  - name: canary
    clusters: 1
  - name: rest
concurrency:
  max: 2
  per_label: {dc: 1}
halt:
  lost_commits: 0
  window_over: 2s
  client_errors_over: 0
window:
  not_before: "2026-12-08T22:00:00Z"
  not_after: "2026-12-09T02:00:00Z"
`
	path := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := LoadFleet(path, []byte(src), shippedForTests)
	if err != nil {
		t.Fatal(err)
	}
	if f.Name != "monthly-patch" || f.Playbook != "postgres-streaming-switchover" || f.Candidate != "auto" || len(f.Digest) != 64 {
		t.Errorf("fleet = %+v", f)
	}
	var names []string
	for _, c := range f.Clusters {
		names = append(names, c.Name)
	}
	if !slices.Equal(names, []string{"c1", "c2", "c3", "c4"}) {
		t.Errorf("clusters = %v, want c1..c4 in file order, the glob's sorted", names)
	}
	c1, c3 := f.Cluster("c1"), f.Cluster("c3")
	// The fleet's vars, then the matching label's, then the cluster's own.
	if got := strings.Join(c1.VarFlags(), " "); got != "max_lag=1MB stop_mode=smart" {
		t.Errorf("c1 vars = %s", got)
	}
	if got := strings.Join(c3.VarFlags(), " "); got != "max_lag=8MB stop_mode=fast" {
		t.Errorf("c3 vars = %s", got)
	}
	if c3.Labels["dc"] != "b" || c1.Labels["tier"] != "gold" || c1.Nodes == nil || len(c1.Nodes.Nodes) != 2 {
		t.Errorf("c1 = %+v, c3 = %+v", c1, c3)
	}
	if len(f.Waves) != 2 || !slices.Equal(f.Waves[0].Clusters, []string{"c1"}) || !slices.Equal(f.Waves[1].Clusters, []string{"c2", "c3", "c4"}) {
		t.Errorf("waves = %+v", f.Waves)
	}
	if f.Limits.Max != 2 || f.Limits.PerLabel["dc"] != 1 {
		t.Errorf("limits = %+v", f.Limits)
	}
	if f.Halt.WindowOver != 2*time.Second || f.Halt.ClientErrorsOver == nil || *f.Halt.ClientErrorsOver != 0 || f.Halt.LostCommits != 0 {
		t.Errorf("halt = %+v", f.Halt)
	}
	if f.Key() != "monthly-patch@2026-12-08T22:00:00Z" || f.Window.NotAfter.IsZero() {
		t.Errorf("key = %s, window %+v", f.Key(), f.Window)
	}

	// No waves: one wave of every cluster; a runbook path relative to the
	// fleet file.
	if err := os.WriteFile(filepath.Join(dir, "mine.yaml"), []byte("name: mine\nsteps: [{name: a}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src = "fleet: small\nplaybook: mine.yaml\ncandidate: pg2\nclusters:\n  - inventory: clusters/*/inventory.yaml\n"
	f, err = LoadFleet(path, []byte(src), shippedForTests)
	if err != nil {
		t.Fatal(err)
	}
	if f.Playbook != filepath.Join(dir, "mine.yaml") || f.Candidate != "pg2" || len(f.Waves) != 1 || len(f.Waves[0].Clusters) != 4 || f.Limits.Max != 1 || f.Key() != "small" {
		t.Errorf("fleet = %+v, waves %+v", f, f.Waves)
	}
}

func TestInvalidFleets(t *testing.T) {
	t.Parallel()
	head := "fleet: f\nplaybook: postgres-streaming-switchover\n"
	for _, tt := range []struct {
		name string
		src  string
		want []string // problems, each "line:col: message" after the file name
	}{
		{
			name: "unknown keys",
			src:  head + "clusters:\n  - inventory: clusters/c1/inventory.yaml\n    label: {dc: a}\nconcurrency: {maxx: 2}\n",
			want: []string{
				`fleet.yaml:5:5: clusters[0]: unknown key "label" (did you mean "labels"?)`,
				`fleet.yaml:6:15: concurrency: unknown key "maxx" (did you mean "max"?)`,
			},
		},
		{
			name: "missing inventory",
			src:  head + "clusters:\n  - inventory: clusters/c9/inventory.yaml\n",
			want: []string{`fleet.yaml:4:16: clusters[0]: inventory clusters/c9/inventory.yaml: no such file (paths are relative to the fleet file)`},
		},
		{
			name: "glob matching nothing",
			src:  head + "clusters:\n  - inventory: clusters/c1/inventory.yaml\n  - inventory: \"other/*.yaml\"\n",
			want: []string{`fleet.yaml:5:16: clusters[1]: inventory "other/*.yaml" matches no file`},
		},
		{
			name: "duplicate cluster names",
			src:  head + "clusters:\n  - inventory: clusters/c1/inventory.yaml\n  - inventory: clusters/c2/inventory.yaml\n  - inventory: clusters/c3/inventory.yaml\n",
			want: []string{`fleet.yaml:6:16: cluster "twin" of inventory clusters/c3/inventory.yaml is already in the fleet: inventory clusters/c2/inventory.yaml (line 5)`},
		},
		{
			name: "a wave of 0 and one over 100 percent",
			src:  head + "clusters:\n  - inventory: clusters/*/inventory.yaml\nwaves:\n  - {name: canary, clusters: 0}\n  - {name: big, percent: 150}\n  - {name: rest}\n",
			want: []string{
				`fleet.yaml:6:30: waves[0]: clusters: 0: want 1 or more`,
				`fleet.yaml:7:26: waves[1]: percent: 150: want 1 to 100`,
			},
		},
		{
			name: "a selector that matches nothing left",
			src: head + "clusters:\n  - inventory: clusters/c1/inventory.yaml\n    labels: {dc: b}\n  - inventory: clusters/c2/inventory.yaml\n    labels: {dc: a}\n  - inventory: clusters/c3/inventory.yaml\n" +
				"waves:\n  - {name: canary, clusters: 1}\n  - {name: dc-b, select: {dc: b}}\n  - {name: rest}\n",
			want: []string{`fleet.yaml:11:5: wave "dc-b": select {dc: b} matches no cluster left for it (left: c2, twin)`},
		},
		{
			name: "clusters left in no wave, a wave with two kinds",
			src:  head + "clusters:\n  - inventory: clusters/*/inventory.yaml\nwaves:\n  - {name: canary, clusters: 1, percent: 10}\n",
			want: []string{`fleet.yaml:6:5: waves[0]: give one of clusters, percent and select, not clusters and percent`},
		},
		{
			name: "clusters left in no wave",
			src:  head + "clusters:\n  - inventory: clusters/*/inventory.yaml\nwaves:\n  - {name: canary, clusters: 1}\n",
			want: []string{`fleet.yaml:6:3: c2, twin left in no wave`},
		},
		{
			name: "a wave with nothing left",
			src:  head + "clusters:\n  - inventory: clusters/*/inventory.yaml\nwaves:\n  - {name: all, percent: 100}\n  - {name: more, clusters: 1}\n",
			want: []string{`fleet.yaml:7:5: wave "more": no cluster is left for it`},
		},
		{
			name: "missing keys, unknown playbook, bad halt and window",
			src: "fleet: Bad Name\nplaybook: postgres-streaming-switchover2\nhalt: {window_over: soon, lost_commits: -1}\n" +
				"window: {not_before: \"2026-12-09T02:00:00Z\", not_after: \"2026-12-08T22:00:00Z\"}\n",
			want: []string{
				`fleet.yaml:1:1: fleet file: missing key "clusters"`,
				`fleet.yaml:1:8: fleet "Bad Name": use lower-case letters`,
				`fleet.yaml:2:11: playbook "postgres-streaming-switchover2": no shipped playbook by that name`,
				`(did you mean "postgres-streaming-switchover"?)`,
				`fleet.yaml:3:21: halt: window_over: want a duration`,
				`fleet.yaml:3:41: halt: lost_commits: -1: want 0 or more`,
				`fleet.yaml:4:57: window: not_after 2026-12-08T22:00:00Z is not after not_before`,
			},
		},
		{
			name: "a problem in an inventory is reported where it is",
			src:  head + "clusters:\n  - inventory: clusters/c1/inventory.yaml\n  - inventory: bad.yaml\n",
			want: []string{`bad.yaml:1:1: inventory: unknown key "clustr"`},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := fleetDir(t, 3, "c1", "c2", "twin")
			if tt.name == "duplicate cluster names" {
				dir = fleetDir(t, 3, "c1", "twin", "twin")
			}
			if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("clustr: x\nnodes: {pg1: {conninfo: host=x}}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			err := loadFleetText(t, dir, tt.src)
			var v *ValidationError
			if !errors.As(err, &v) {
				t.Fatalf("err = %v, want a validation error", err)
			}
			got := strings.ReplaceAll(err.Error(), dir+string(os.PathSeparator), "")
			got = strings.ReplaceAll(got, dir, "DIR")
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("want a problem containing\n  %s\ngot:\n%s", w, got)
				}
			}
		})
	}
}
