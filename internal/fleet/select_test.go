package fleet

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// wavesText renders waves as "name: c1 c2 | name: ...".
func wavesText(ws []Wave) string {
	var parts []string
	for _, w := range ws {
		parts = append(parts, strings.TrimSpace(w.Name+": "+strings.Join(w.Clusters, " ")))
	}
	return strings.Join(parts, " | ")
}

// A selection keeps the clusters carrying every label given, each in the
// wave the whole fleet gave it; a wave left empty stays, and the fleet's
// journal moves to a directory of the selection's own.
func TestSelect(t *testing.T) {
	t.Parallel()
	labels := func(i int) map[string]string {
		l := map[string]string{"dc": "a", "tier": "gold"}
		if i%2 == 0 {
			l["dc"] = "b"
		}
		if i > 4 {
			l["tier"] = "silver"
		}
		return l
	}
	for _, tt := range []struct {
		name       string
		sel        map[string]string
		want       string
		wantDir    string
		unselected int
		wantErr    string
	}{
		{name: "none: the whole fleet", want: "canary: c1 | first: c2 c3 | rest: c4 c5 c6", wantDir: "fleets/patch"},
		{name: "dc=a keeps its waves", sel: map[string]string{"dc": "a"}, want: "canary: c1 | first: c3 | rest: c5",
			wantDir: "fleets/patch/select/dc=a", unselected: 3},
		{name: "dc=b: the canary wave is left empty", sel: map[string]string{"dc": "b"}, want: "canary: | first: c2 | rest: c4 c6",
			wantDir: "fleets/patch/select/dc=b", unselected: 3},
		{name: "two labels, sorted in the directory", sel: map[string]string{"tier": "silver", "dc": "b"}, want: "canary: | first: | rest: c6",
			wantDir: "fleets/patch/select/dc=b,tier=silver", unselected: 5},
		{name: "no match", sel: map[string]string{"dc": "c"}, wantErr: "select {dc: c}: no cluster of fleet patch carries these labels"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cs := clustersOf(6, labels)
			waves, probs := Assign(cs, []WaveSpec{{Name: "canary", Count: 1}, {Name: "first", Count: 2}, {Name: "rest"}})
			if len(probs) > 0 {
				t.Fatal(probs)
			}
			f := &Fleet{Name: "patch", Clusters: cs, Waves: waves}
			err := f.Select(tt.sel)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				if len(f.Clusters) != 6 || f.Selection != nil {
					t.Errorf("a refused selection changed the fleet: %d clusters, %v", len(f.Clusters), f.Selection)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := wavesText(f.Waves); got != tt.want {
				t.Errorf("waves %q, want %q", got, tt.want)
			}
			for _, c := range f.Clusters {
				if !strings.Contains(" "+strings.Join(f.Waves[c.Wave].Clusters, " ")+" ", " "+c.Name+" ") {
					t.Errorf("%s: not in its wave %d", c.Name, c.Wave)
				}
			}
			if f.Unselected != tt.unselected {
				t.Errorf("unselected %d, want %d", f.Unselected, tt.unselected)
			}
			if got := f.JournalDir("/j"); got != filepath.Join("/j", tt.wantDir) {
				t.Errorf("journal dir %s, want %s", got, tt.wantDir)
			}
			if f.Key() != "patch" {
				t.Errorf("key %s: a selection is one campaign with the rest of the fleet", f.Key())
			}
		})
	}
}

// Selection values that are not safe in a file name stay inside the
// fleet's directory.
func TestSelectJournalDirSafe(t *testing.T) {
	t.Parallel()
	f := &Fleet{Name: "patch", Clusters: []*Cluster{{Name: "c1", Labels: map[string]string{"dc": "../x y"}}}, Waves: []Wave{{Name: "all", Clusters: []string{"c1"}}}}
	if err := f.Select(map[string]string{"dc": "../x y"}); err != nil {
		t.Fatal(err)
	}
	got := f.JournalDir("/j")
	if want := "/j/fleets/patch/select/dc=.._x_y"; got != want {
		t.Errorf("journal dir %s, want %s", got, want)
	}
	if fmt.Sprint(f.Selection) != "map[dc:../x y]" {
		t.Errorf("selection %v", f.Selection)
	}
}
