// Package fleet runs one playbook over many clusters in one window, the
// monthly patch across a fleet: clusters in waves (a canary cluster first),
// at most so many at once overall and per label value (a datacenter, say),
// a halt when a finished run breaches a rule (its exit, the commits it
// lost, its window, its client errors), a deadline, and a journal of its
// own so that a fleet killed, halted or out of its window resumes without
// touching a cluster twice.
//
// A fleet run is many ordinary runs: each cluster's switchover is the
// program run again as a child process, with its own journal, claim,
// guard, report and exit code, which outlives the fleet process. The fleet
// reads each child's JSON events for its run id, its step and its figures.
// The package knows nothing of the runbook engine: it drives children
// through a Runner and reads their journals through Runs; the command line
// gives both. The fleet file is loaded, with positions for its errors, by
// runbook/spec (LoadFleet) into this package's model.
package fleet

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/cluster"
)

// Fleet is a fleet file, loaded and checked: every cluster found (its
// inventory read), every wave filled.
type Fleet struct {
	// Name is the fleet's name: typed to approve a run of it, and the tag
	// of every cluster run it starts.
	Name string
	// File is the fleet file's absolute path; Digest the sha256 of its
	// bytes.
	File   string
	Digest string
	// Playbook is a shipped playbook's name, or a runbook's absolute path.
	Playbook string
	// Candidate is each run's --candidate: "auto" or a node name.
	Candidate string
	// Clusters are in the file's order (a glob's matches sorted).
	Clusters []*Cluster
	Waves    []Wave
	Limits   Limits
	Halt     HaltRules
	Window   Window
	// Selection is the label selection the fleet was narrowed to (see
	// Select); nil: the whole fleet. Unselected counts the clusters it
	// left out.
	Selection  map[string]string
	Unselected int
}

// Cluster is one cluster of a fleet.
type Cluster struct {
	// Name is the inventory's cluster name, unique in the fleet.
	Name string
	// Inventory is the inventory's absolute path.
	Inventory string
	Labels    map[string]string
	// Vars are the runbook variables of this cluster's runs: the fleet's,
	// then each matching label selector's in the file's order, then the
	// cluster's own, a later one winning.
	Vars map[string]string
	// Wave is the index of the cluster's wave in Fleet.Waves.
	Wave int
	// Nodes is the inventory's cluster, where the fleet's record of a
	// cluster it switched is kept (see Records).
	Nodes *cluster.Cluster
}

// VarFlags are the cluster's variables as --var NAME=VALUE arguments, in
// name order.
func (c *Cluster) VarFlags() []string {
	names := slices.Sorted(maps.Keys(c.Vars))
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n + "=" + c.Vars[n]
	}
	return out
}

// Matches reports whether the cluster carries every label of sel.
func (c *Cluster) Matches(sel map[string]string) bool {
	for k, v := range sel {
		if got, ok := c.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Wave is a group of clusters started together, one wave after another.
type Wave struct {
	Name     string
	Clusters []string // cluster names, in the fleet's order
}

// Limits bound how many clusters switch at once.
type Limits struct {
	// Max is the most clusters at once; at least 1.
	Max int
	// PerLabel bounds, for each label named, the clusters at once that
	// share one value of it (per datacenter, say). A cluster without the
	// label is not bounded by it.
	PerLabel map[string]int
}

// Allows reports whether c may start while running run.
func (l Limits) Allows(c *Cluster, running []*Cluster) bool {
	if len(running) >= max(l.Max, 1) {
		return false
	}
	for label, most := range l.PerLabel {
		v, ok := c.Labels[label]
		if !ok {
			continue
		}
		n := 0
		for _, r := range running {
			if rv, ok := r.Labels[label]; ok && rv == v {
				n++
			}
		}
		if n >= most {
			return false
		}
	}
	return true
}

// String says the limits in words: "at most 2 at once, 1 per dc".
func (l Limits) String() string {
	s := fmt.Sprintf("at most %d at once", max(l.Max, 1))
	for _, label := range slices.Sorted(maps.Keys(l.PerLabel)) {
		s += fmt.Sprintf(", %d per %s", l.PerLabel[label], label)
	}
	return s
}

// Window is when clusters may start. Zero times are no bound.
type Window struct {
	NotBefore, NotAfter time.Time
}

// Key is what the fleet's cluster runs are tagged with and what the
// record of a cluster it switched is kept under: the fleet's name, and
// when the fleet file gives a window, its opening time, so that the same
// fleet file run again in next month's window is a new campaign while two
// runs of it in one window are one.
func (f *Fleet) Key() string {
	if f.Window.NotBefore.IsZero() {
		return f.Name
	}
	return f.Name + "@" + f.Window.NotBefore.UTC().Format(time.RFC3339)
}

// Select narrows the fleet to the clusters that carry every label of
// sel, so that one fleet file can be split across machines by label (one
// bastion per datacenter). The waves are the whole fleet's, computed
// before, then filtered: a cluster keeps its wave, and a wave left with
// no cluster stays, empty, and is passed over. An empty sel keeps every
// cluster; a sel no cluster matches is an error.
func (f *Fleet) Select(sel map[string]string) error {
	if len(sel) == 0 {
		return nil
	}
	var keep []*Cluster
	for _, c := range f.Clusters {
		if c.Matches(sel) {
			keep = append(keep, c)
		}
	}
	if len(keep) == 0 {
		return fmt.Errorf("select %s: no cluster of fleet %s carries these labels", selector(sel), f.Name)
	}
	kept := func(name string) bool { c := f.Cluster(name); return c != nil && c.Matches(sel) }
	for i := range f.Waves {
		f.Waves[i].Clusters = slices.DeleteFunc(slices.Clone(f.Waves[i].Clusters), func(n string) bool { return !kept(n) })
	}
	f.Unselected = len(f.Clusters) - len(keep)
	f.Clusters, f.Selection = keep, maps.Clone(sel)
	return nil
}

// JournalDir is where the fleet's journals and lock are kept under
// journalDir: Dir(journalDir, Name), and for a selection a directory of
// its own below it (select/dc=a), so that two selections of one fleet on
// one machine each have their journal and lock, and neither's last run
// is the other's.
func (f *Fleet) JournalDir(journalDir string) string {
	dir := Dir(journalDir, f.Name)
	if len(f.Selection) == 0 {
		return dir
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(f.Selection)) {
		parts = append(parts, unsafeName.ReplaceAllString(k, "_")+"="+unsafeName.ReplaceAllString(f.Selection[k], "_"))
	}
	return filepath.Join(dir, "select", strings.Join(parts, ","))
}

// Cluster returns the cluster named name, or nil.
func (f *Fleet) Cluster(name string) *Cluster {
	for _, c := range f.Clusters {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// WaveOf returns the name of the wave cluster name is in.
func (f *Fleet) WaveOf(name string) string {
	if c := f.Cluster(name); c != nil && c.Wave < len(f.Waves) {
		return f.Waves[c.Wave].Name
	}
	return ""
}

// WaveSpec is a wave as the fleet file writes it: a count, a percentage
// of all clusters, a label selector, or none of them (the rest). A count
// or a percentage of 0 is not given.
type WaveSpec struct {
	Name    string
	Count   int
	Percent int
	Select  map[string]string
}

// WaveProblem is what is wrong with one wave (Wave is its index), or,
// with Wave -1, with the waves as a whole.
type WaveProblem struct {
	Wave int
	Msg  string
}

// Assign fills the waves in order, each from the clusters not yet in a
// wave, in the fleet's order: a count takes that many, a percentage that
// share of all clusters (rounded up), a selector every cluster left that
// matches it, and a wave with none of them the rest (which may be none:
// a fleet of three with a canary and half of it). Without waves, one
// wave holds every cluster. It sets each cluster's Wave. A count below 0,
// a percentage over 100, a wave of a size or selector left empty and
// clusters left in no wave are problems (the loader refuses a count or percentage of 0 where it is
// written).
func Assign(clusters []*Cluster, specs []WaveSpec) ([]Wave, []WaveProblem) {
	if len(specs) == 0 {
		specs = []WaveSpec{{Name: "all"}}
	}
	left := slices.Clone(clusters)
	var waves []Wave
	var probs []WaveProblem
	for i, s := range specs {
		w := Wave{Name: s.Name}
		var take []*Cluster
		bad := ""
		switch {
		case s.Count < 0:
			bad = fmt.Sprintf("wave %q: clusters %d: want 1 or more", s.Name, s.Count)
		case s.Percent < 0 || s.Percent > 100:
			bad = fmt.Sprintf("wave %q: percent %d: want 1 to 100", s.Name, s.Percent)
		case s.Count > 0:
			take = left[:min(s.Count, len(left))]
		case s.Percent > 0:
			n := (s.Percent*len(clusters) + 99) / 100
			take = left[:min(n, len(left))]
		case s.Select != nil:
			for _, c := range left {
				if c.Matches(s.Select) {
					take = append(take, c)
				}
			}
			if len(take) == 0 && len(left) > 0 {
				bad = fmt.Sprintf("wave %q: select %s matches no cluster left for it (left: %s)", s.Name, selector(s.Select), names(left))
			}
		default:
			take = left
		}
		rest := s.Count == 0 && s.Percent == 0 && s.Select == nil
		if bad == "" && len(take) == 0 && !rest {
			bad = fmt.Sprintf("wave %q: no cluster is left for it (the waves before it take all %d)", s.Name, len(clusters))
		}
		if bad != "" {
			probs = append(probs, WaveProblem{i, bad})
		}
		for _, c := range take {
			c.Wave = len(waves)
			w.Clusters = append(w.Clusters, c.Name)
		}
		left = slices.DeleteFunc(left, func(c *Cluster) bool { return slices.Contains(take, c) })
		waves = append(waves, w)
	}
	if len(left) > 0 && len(probs) == 0 {
		probs = append(probs, WaveProblem{-1, fmt.Sprintf("%s left in no wave; end the waves with one that gives no clusters, percent or select (the rest)", names(left))})
	}
	return waves, probs
}

// selector renders a label selector: {dc: b, tier: gold}.
func selector(sel map[string]string) string {
	keys := slices.Sorted(maps.Keys(sel))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + sel[k]
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func names(cs []*Cluster) string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Name
	}
	sort.Strings(out)
	if len(out) > 8 {
		return strings.Join(out[:8], ", ") + fmt.Sprintf(" and %d more", len(out)-8)
	}
	return strings.Join(out, ", ")
}
