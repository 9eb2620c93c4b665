package sandbox_test

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/switchover/switchover/internal/sandbox"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

func TestFleetLayout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                     string
		base, clusters, standbys int
		want                     []sandbox.ClusterPorts
		wantErr                  string
	}{
		{name: "three of two nodes", base: 54320, clusters: 3, standbys: 1, want: []sandbox.ClusterPorts{
			{Name: "c1", Pooler: 54320, Primary: 54321, Standbys: []int{54322}},
			{Name: "c2", Pooler: 54330, Primary: 54331, Standbys: []int{54332}},
			{Name: "c3", Pooler: 54340, Primary: 54341, Standbys: []int{54342}},
		}},
		{name: "the most standbys fill the stride", base: 20000, clusters: 2, standbys: 8, want: []sandbox.ClusterPorts{
			{Name: "c1", Pooler: 20000, Primary: 20001, Standbys: []int{20002, 20003, 20004, 20005, 20006, 20007, 20008, 20009}},
			{Name: "c2", Pooler: 20010, Primary: 20011, Standbys: []int{20012, 20013, 20014, 20015, 20016, 20017, 20018, 20019}},
		}},
		{name: "the last port is 65535", base: 65533, clusters: 1, standbys: 1, want: []sandbox.ClusterPorts{
			{Name: "c1", Pooler: 65533, Primary: 65534, Standbys: []int{65535}},
		}},
		{name: "past 65535", base: 65530, clusters: 2, standbys: 1, wantErr: "--port-base 65530: 2 clusters need ports 65530 to 65542"},
		{name: "no base", base: 0, clusters: 1, standbys: 1, wantErr: "--port-base 0"},
		{name: "no clusters", base: 54320, clusters: 0, standbys: 1, wantErr: "--clusters 0: want 1 to 20"},
		{name: "too many clusters", base: 20000, clusters: 21, standbys: 1, wantErr: "--clusters 21: want 1 to 20"},
		{name: "no standby", base: 54320, clusters: 2, standbys: 0, wantErr: "--standbys 0: a fleet's cluster has room for 1 to 8"},
		{name: "more standbys than the stride holds", base: 54320, clusters: 2, standbys: 9, wantErr: "--standbys 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := sandbox.FleetLayout(tt.base, tt.clusters, tt.standbys)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("FleetLayout: err %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("FleetLayout:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestFleetLayoutNoOverlap: however many clusters and standbys, no two
// clusters share a port, and each cluster's ports are its range.
func TestFleetLayoutNoOverlap(t *testing.T) {
	t.Parallel()
	for clusters := 1; clusters <= sandbox.MaxFleetClusters; clusters++ {
		for standbys := 1; standbys <= sandbox.MaxFleetStandbys; standbys++ {
			layout, err := sandbox.FleetLayout(30000, clusters, standbys)
			if err != nil {
				t.Fatalf("%d clusters of %d standbys: %v", clusters, standbys, err)
			}
			seen := map[int]string{}
			for i, c := range layout {
				if c.Name != sandbox.FleetName(i+1) {
					t.Errorf("cluster %d is named %s", i+1, c.Name)
				}
				for _, p := range c.Ports() {
					if other, ok := seen[p]; ok {
						t.Fatalf("%d clusters of %d standbys: port %d is %s's and %s's", clusters, standbys, p, other, c.Name)
					}
					if p < c.Base() || p >= c.Base()+sandbox.FleetStride {
						t.Fatalf("%s: port %d outside %d..%d", c.Name, p, c.Base(), c.Base()+sandbox.FleetStride-1)
					}
					seen[p] = c.Name
				}
			}
		}
	}
}

// TestFleetFile: the fleet file is the one format the fleet commands read
// (golden, refreshed by -update), YAML with exactly its keys, each
// inventory relative to the file, dc alternating a/b.
func TestFleetFile(t *testing.T) {
	t.Parallel()
	layout, err := sandbox.FleetLayout(54320, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	got := sandbox.RenderFleetFile(layout)
	golden := filepath.Join("testdata", "fleet3.yaml.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("fleet file:\n%s\nwant (%s):\n%s", got, golden, want)
	}
	checkFleetFile(t, got, 3)
}

// TestFleetFileSizes: the fleet file of one cluster and of the most.
func TestFleetFileSizes(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 2, sandbox.MaxFleetClusters} {
		layout, err := sandbox.FleetLayout(20000, n, 1)
		if err != nil {
			t.Fatal(err)
		}
		checkFleetFile(t, sandbox.RenderFleetFile(layout), n)
	}
}

// checkFleetFile parses a fleet file of n clusters and checks its keys
// and values.
func checkFleetFile(t *testing.T, src []byte, n int) {
	t.Helper()
	if !strings.HasPrefix(string(src), "# ") {
		t.Errorf("the fleet file does not open with a comment:\n%s", src)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		t.Fatalf("the fleet file is not YAML: %v\n%s", err, src)
	}
	var keys []string
	for i := 0; i < len(doc.Content[0].Content); i += 2 {
		keys = append(keys, doc.Content[0].Content[i].Value)
	}
	if want := []string{"fleet", "playbook", "candidate", "clusters", "waves", "concurrency", "halt"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("fleet file keys %v, want %v", keys, want)
	}
	type cluster struct {
		Inventory string            `yaml:"inventory"`
		Labels    map[string]string `yaml:"labels"`
	}
	type wave struct {
		Name     string `yaml:"name"`
		Clusters int    `yaml:"clusters"`
		Percent  int    `yaml:"percent"`
	}
	var f struct {
		Fleet       string    `yaml:"fleet"`
		Playbook    string    `yaml:"playbook"`
		Candidate   string    `yaml:"candidate"`
		Clusters    []cluster `yaml:"clusters"`
		Waves       []wave    `yaml:"waves"`
		Concurrency struct {
			Max      int            `yaml:"max"`
			PerLabel map[string]int `yaml:"per_label"`
		} `yaml:"concurrency"`
		Halt struct {
			LostCommits int    `yaml:"lost_commits"`
			WindowOver  string `yaml:"window_over"`
		} `yaml:"halt"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(src)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("fleet file: %v", err)
	}
	if f.Fleet != "sandbox-fleet" || f.Playbook != "postgres-streaming-switchover" || f.Candidate != "auto" {
		t.Errorf("fleet %q playbook %q candidate %q", f.Fleet, f.Playbook, f.Candidate)
	}
	if len(f.Clusters) != n {
		t.Fatalf("%d clusters, want %d", len(f.Clusters), n)
	}
	for i, c := range f.Clusters {
		dc := "a"
		if i%2 == 1 {
			dc = "b"
		}
		if want := "c" + strconv.Itoa(i+1) + "/inventory.yaml"; c.Inventory != want || !reflect.DeepEqual(c.Labels, map[string]string{"dc": dc}) {
			t.Errorf("cluster %d: %+v, want inventory %s, labels {dc: %s}", i+1, c, want, dc)
		}
	}
	if want := []wave{{Name: "canary", Clusters: 1}, {Name: "second", Percent: 50}, {Name: "rest"}}; !reflect.DeepEqual(f.Waves, want) {
		t.Errorf("waves %+v, want %+v", f.Waves, want)
	}
	if f.Concurrency.Max != 2 || !reflect.DeepEqual(f.Concurrency.PerLabel, map[string]int{"dc": 1}) {
		t.Errorf("concurrency %+v", f.Concurrency)
	}
	if f.Halt.LostCommits != 0 || f.Halt.WindowOver != "5s" {
		t.Errorf("halt %+v", f.Halt)
	}
}
