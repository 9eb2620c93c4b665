package spec

// The fleet file: one playbook over many clusters, in waves, within
// limits, halted by rules, in a window. It is read with the same strict
// reader as runbooks and inventories, every inventory it names is loaded,
// and the waves are filled (package fleet) before anything runs.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/switchover/switchover/internal/fleet"
)

// LoadFleet reads a fleet file. Inventories and runbook paths are
// relative to the file's directory; shipped are the names of the
// playbooks in the binary. Every problem is reported with its
// file:line:col: unknown keys, a missing inventory, a glob that matches
// nothing, two clusters of one name, an invalid wave; a fleet with any
// problem runs nothing.
func LoadFleet(file string, src []byte, shipped []string) (*fleet.Fleet, error) {
	r := &reader{file: file, reported: map[*yaml.Node]bool{}}
	sum := sha256.Sum256(src)
	abs, err := filepath.Abs(file)
	if err != nil {
		abs = file
	}
	f := &fleet.Fleet{File: abs, Digest: hex.EncodeToString(sum[:]), Candidate: "auto", Limits: fleet.Limits{Max: 1}}
	root := r.parse(src, "a fleet (fleet:, playbook:, clusters:, ...)")
	if root == nil {
		return nil, r.probs.err()
	}
	fr := &fleetReader{reader: r, dir: filepath.Dir(abs), f: f}
	var playbookNode, clustersNode, wavesNode *yaml.Node
	var labels []labelVars
	var vars []VarDecl
	suggested := r.fields(root, "fleet file", map[string]func(k, v *yaml.Node){
		"fleet":       func(_, v *yaml.Node) { f.Name = r.name(v, "fleet") },
		"playbook":    func(_, v *yaml.Node) { playbookNode = v },
		"candidate":   func(_, v *yaml.Node) { f.Candidate = r.str(v, "candidate") },
		"vars":        func(_, v *yaml.Node) { vars = fr.valuedVars(v, "vars") },
		"clusters":    func(_, v *yaml.Node) { clustersNode = v },
		"labels":      func(_, v *yaml.Node) { labels = fr.labelVars(v) },
		"waves":       func(_, v *yaml.Node) { wavesNode = v },
		"concurrency": func(_, v *yaml.Node) { fr.concurrency(v) },
		"halt":        func(_, v *yaml.Node) { fr.halt(v) },
		"window":      func(_, v *yaml.Node) { fr.window(v) },
	})
	for _, key := range []string{"fleet", "playbook", "clusters"} {
		if !hasKey(root, key) && !suggested[key] {
			r.probs.add(r.pos(root), "fleet file: missing key %q", key)
		}
	}
	if playbookNode != nil {
		f.Playbook = fr.playbook(playbookNode, shipped)
	}
	if clustersNode != nil {
		fr.clusters(clustersNode)
	}
	for _, c := range f.Clusters {
		c.Vars = mergeVars(vars, labels, c)
	}
	if wavesNode != nil {
		fr.waves(wavesNode)
	} else if len(f.Clusters) > 0 {
		f.Waves, _ = fleet.Assign(f.Clusters, nil)
	}
	return f, r.probs.err()
}

// fleetReader reads one fleet file.
type fleetReader struct {
	*reader
	dir string // the fleet file's directory: paths are relative to it
	f   *fleet.Fleet
	// entry is where each cluster was named (its clusters: entry).
	entry map[string]*yaml.Node
}

// labelVars is a labels: entry: variables for the clusters it matches.
type labelVars struct {
	match map[string]string
	vars  []VarDecl
}

// mergeVars is a cluster's variables: the fleet's, then each matching
// label selector's in the file's order, then the cluster's own.
func mergeVars(fleetVars []VarDecl, labels []labelVars, c *fleet.Cluster) map[string]string {
	out := map[string]string{}
	for _, v := range fleetVars {
		out[v.Name] = v.Value
	}
	for _, l := range labels {
		if c.Matches(l.match) {
			for _, v := range l.vars {
				out[v.Name] = v.Value
			}
		}
	}
	for k, v := range c.Vars {
		out[k] = v
	}
	return out
}

// valuedVars reads a vars: mapping whose every variable has a value: a
// fleet's variables are given, not declared.
func (r *fleetReader) valuedVars(n *yaml.Node, what string) []VarDecl {
	vs := r.vars(n, what)
	for _, v := range vs {
		if !v.HasValue {
			r.probs.add(v.Pos, "%s: %s: want a value (~ declares a variable in a runbook; here it must be given)", what, v.Name)
		}
	}
	return vs
}

// labelMap reads {label: value, ...}; empty is a problem when nonEmpty.
func (r *fleetReader) labelMap(n *yaml.Node, what string, nonEmpty bool) map[string]string {
	if n.Kind != yaml.MappingNode {
		r.errf(n, "%s: want a mapping of labels to values, got %s", what, kindName(n))
		return nil
	}
	if nonEmpty && len(n.Content) == 0 {
		r.errf(n, "%s: the mapping is empty: name at least one label", what)
		return nil
	}
	out := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || !varName.MatchString(k.Value) {
			r.errf(k, "%s: %s is not a label name (letters, digits and _, not starting with a digit)", what, kindName(k))
			continue
		}
		if _, dup := out[k.Value]; dup {
			r.errf(k, "%s: %q is given twice", what, k.Value)
			continue
		}
		if s, ok := r.scalar(v, what+": "+k.Value); ok {
			out[k.Value] = s.Value
		}
	}
	return out
}

// playbook resolves playbook: a runbook file relative to the fleet file,
// or a shipped playbook's name.
func (r *fleetReader) playbook(n *yaml.Node, shipped []string) string {
	s, ok := r.scalar(n, "playbook")
	if !ok {
		return ""
	}
	path := filepath.Join(r.dir, s.Value)
	if filepath.IsAbs(s.Value) {
		path = s.Value
	}
	looksLikePath := strings.ContainsRune(s.Value, os.PathSeparator) || strings.HasSuffix(s.Value, ".yaml") || strings.HasSuffix(s.Value, ".yml")
	if st, err := os.Stat(path); err == nil && !st.IsDir() {
		return path
	}
	name := strings.TrimSuffix(strings.TrimPrefix(s.Value, "playbook:"), ".yaml")
	if !looksLikePath || strings.HasPrefix(s.Value, "playbook:") {
		if slices.Contains(shipped, name) {
			return name
		}
		msg := fmt.Sprintf("playbook %q: no shipped playbook by that name (shipped: %s), and no file %s", s.Value, strings.Join(shipped, ", "), path)
		if sug := suggest(name, shipped); sug != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", sug)
		}
		r.errf(n, "%s", msg)
		return ""
	}
	r.errf(n, "playbook %q: no such file %s (a runbook path is relative to the fleet file)", s.Value, path)
	return ""
}

// clusters reads the clusters: list: each an inventory path or glob,
// with optional labels and vars; every inventory is loaded for its
// cluster's name.
func (r *fleetReader) clusters(n *yaml.Node) {
	if n.Kind != yaml.SequenceNode {
		r.errf(n, "clusters: want a list of {inventory: PATH}, got %s", kindName(n))
		return
	}
	if len(n.Content) == 0 {
		r.errf(n, "clusters: the list is empty")
		return
	}
	r.entry = map[string]*yaml.Node{}
	for i, item := range n.Content {
		what := fmt.Sprintf("clusters[%d]", i)
		var invNode *yaml.Node
		var labels map[string]string
		var vars []VarDecl
		suggested := r.fields(item, what, map[string]func(k, v *yaml.Node){
			"inventory": func(_, v *yaml.Node) { invNode = v },
			"labels":    func(_, v *yaml.Node) { labels = r.labelMap(v, what+": labels", false) },
			"vars":      func(_, v *yaml.Node) { vars = r.valuedVars(v, what+": vars") },
		})
		if item.Kind != yaml.MappingNode {
			continue
		}
		if invNode == nil {
			if !suggested["inventory"] {
				r.errf(item, "%s: missing key \"inventory\" (an inventory path, or a glob, relative to the fleet file)", what)
			}
			continue
		}
		pattern, ok := r.scalar(invNode, what+": inventory")
		if !ok {
			continue
		}
		for _, path := range r.inventories(invNode, what, pattern.Value) {
			c := r.inventory(invNode, path)
			if c == nil {
				continue
			}
			c.Labels = map[string]string{}
			for k, v := range labels {
				c.Labels[k] = v
			}
			c.Vars = map[string]string{}
			for _, v := range vars {
				c.Vars[v.Name] = v.Value
			}
			r.f.Clusters = append(r.f.Clusters, c)
		}
	}
}

// inventories expands an inventory: value, a path or a glob, relative to
// the fleet file.
func (r *fleetReader) inventories(n *yaml.Node, what, pattern string) []string {
	path := pattern
	if !filepath.IsAbs(path) {
		path = filepath.Join(r.dir, path)
	}
	if !strings.ContainsAny(pattern, "*?[") {
		if st, err := os.Stat(path); err != nil || st.IsDir() {
			why := "no such file"
			if err == nil {
				why = "is a directory"
			} else if !os.IsNotExist(err) {
				why = err.Error()
			}
			r.errf(n, "%s: inventory %s: %s (paths are relative to the fleet file)", what, path, why)
			return nil
		}
		return []string{path}
	}
	matches, err := filepath.Glob(path)
	if err != nil {
		r.errf(n, "%s: inventory %q: %v", what, pattern, err)
		return nil
	}
	matches = slices.DeleteFunc(matches, func(m string) bool {
		st, err := os.Stat(m)
		return err != nil || st.IsDir()
	})
	if len(matches) == 0 {
		r.errf(n, "%s: inventory %q matches no file (the glob is relative to the fleet file: %s)", what, pattern, path)
	}
	return matches
}

// inventory loads one inventory for its cluster; its own problems are
// the fleet's, at their own positions.
func (r *fleetReader) inventory(n *yaml.Node, path string) *fleet.Cluster {
	b, err := os.ReadFile(path)
	if err != nil {
		r.errf(n, "inventory %s: %v", path, err)
		return nil
	}
	inv, err := LoadInventory(path, b)
	if v, ok := err.(*ValidationError); ok {
		r.probs = append(r.probs, v.Problems...)
		return nil
	}
	if err != nil {
		r.errf(n, "inventory %s: %v", path, err)
		return nil
	}
	name := inv.Cluster.Name
	if first, dup := r.entry[name]; dup {
		prev := r.f.Cluster(name)
		r.errf(n, "cluster %q of inventory %s is already in the fleet: inventory %s (line %d); cluster names must be unique", name, path, prev.Inventory, first.Line)
		return nil
	}
	r.entry[name] = n
	return &fleet.Cluster{Name: name, Inventory: path, Nodes: inv.Cluster}
}

// labelVars reads labels: [{match: {label: value}, vars: {...}}].
func (r *fleetReader) labelVars(n *yaml.Node) []labelVars {
	if n.Kind != yaml.SequenceNode {
		r.errf(n, "labels: want a list of {match: {LABEL: VALUE}, vars: {...}}, got %s", kindName(n))
		return nil
	}
	var out []labelVars
	for i, item := range n.Content {
		what := fmt.Sprintf("labels[%d]", i)
		var l labelVars
		hasMatch := false
		r.fields(item, what, map[string]func(k, v *yaml.Node){
			"match": func(_, v *yaml.Node) { hasMatch, l.match = true, r.labelMap(v, what+": match", true) },
			"vars":  func(_, v *yaml.Node) { l.vars = r.valuedVars(v, what+": vars") },
		})
		if item.Kind == yaml.MappingNode && !hasMatch {
			r.errf(item, "%s: missing key \"match\" (the labels whose clusters get these vars)", what)
		}
		out = append(out, l)
	}
	return out
}

// waves reads waves: and fills them from the clusters.
func (r *fleetReader) waves(n *yaml.Node) {
	if n.Kind != yaml.SequenceNode {
		r.errf(n, "waves: want a list of {name: NAME, clusters: N | percent: P | select: {LABEL: VALUE}}, got %s", kindName(n))
		return
	}
	if len(n.Content) == 0 {
		r.errf(n, "waves: the list is empty (leave waves: out for one wave of every cluster)")
		return
	}
	var specs []fleet.WaveSpec
	var at []*yaml.Node
	bad := false
	seen := map[string]int{}
	for i, item := range n.Content {
		what := fmt.Sprintf("waves[%d]", i)
		var s fleet.WaveSpec
		var kinds []string
		r.fields(item, what, map[string]func(k, v *yaml.Node){
			"name": func(_, v *yaml.Node) {
				s.Name = r.name(v, what+": name")
				if line, dup := seen[s.Name]; dup && s.Name != "" {
					r.errf(v, "%s: wave %q is named twice (first at line %d)", what, s.Name, line)
					bad = true
				}
				seen[s.Name] = v.Line
			},
			"clusters": func(k, v *yaml.Node) {
				kinds = append(kinds, k.Value)
				if s.Count = r.integer(v, what+": clusters", 1, -1); s.Count == 0 {
					bad = true
				}
			},
			"percent": func(k, v *yaml.Node) {
				kinds = append(kinds, k.Value)
				if s.Percent = r.integer(v, what+": percent", 1, 100); s.Percent == 0 {
					bad = true
				}
			},
			"select": func(k, v *yaml.Node) {
				kinds = append(kinds, k.Value)
				if s.Select = r.labelMap(v, what+": select", true); s.Select == nil {
					bad = true
				}
			},
		})
		if item.Kind != yaml.MappingNode {
			bad = true
			continue
		}
		if s.Name == "" && !hasKey(item, "name") {
			r.errf(item, "%s: missing key \"name\"", what)
			bad = true
		}
		if len(kinds) > 1 {
			r.errf(item, "%s: give one of clusters, percent and select, not %s", what, strings.Join(kinds, " and "))
			bad = true
		}
		specs = append(specs, s)
		at = append(at, item)
	}
	if bad || len(r.f.Clusters) == 0 {
		return
	}
	waves, probs := fleet.Assign(r.f.Clusters, specs)
	for _, p := range probs {
		node := n
		if p.Wave >= 0 {
			node = at[p.Wave]
		}
		r.errf(node, "%s", p.Msg)
	}
	r.f.Waves = waves
}

// integer reads a whole number from lo to hi (hi < 0: no upper bound);
// 0 when it is not one.
func (r *fleetReader) integer(n *yaml.Node, what string, lo, hi int) int {
	s, ok := r.scalar(n, what)
	if !ok {
		return 0
	}
	v, err := strconv.Atoi(strings.TrimSpace(s.Value))
	switch {
	case err != nil || n.Tag == "!!str":
		r.errf(n, "%s: want a whole number, got %q", what, s.Value)
		return 0
	case v < lo || (hi >= 0 && v > hi):
		bound := fmt.Sprintf("%d or more", lo)
		if hi >= 0 {
			bound = fmt.Sprintf("%d to %d", lo, hi)
		}
		r.errf(n, "%s: %d: want %s", what, v, bound)
		return 0
	}
	return v
}

// concurrency reads {max: N, per_label: {LABEL: M}}.
func (r *fleetReader) concurrency(n *yaml.Node) {
	r.fields(n, "concurrency", map[string]func(k, v *yaml.Node){
		"max": func(_, v *yaml.Node) {
			if m := r.integer(v, "concurrency: max", 1, -1); m > 0 {
				r.f.Limits.Max = m
			}
		},
		"per_label": func(_, v *yaml.Node) {
			if v.Kind != yaml.MappingNode {
				r.errf(v, "concurrency: per_label: want a mapping of labels to numbers, got %s", kindName(v))
				return
			}
			r.f.Limits.PerLabel = map[string]int{}
			for i := 0; i+1 < len(v.Content); i += 2 {
				k := v.Content[i]
				if k.Kind != yaml.ScalarNode || !varName.MatchString(k.Value) {
					r.errf(k, "concurrency: per_label: %s is not a label name", kindName(k))
					continue
				}
				if m := r.integer(v.Content[i+1], "concurrency: per_label: "+k.Value, 1, -1); m > 0 {
					r.f.Limits.PerLabel[k.Value] = m
				}
			}
		},
	})
}

// halt reads {lost_commits: N, window_over: DURATION, client_errors_over: N}.
func (r *fleetReader) halt(n *yaml.Node) {
	r.fields(n, "halt", map[string]func(k, v *yaml.Node){
		"lost_commits": func(_, v *yaml.Node) {
			if m := r.integer(v, "halt: lost_commits", 0, -1); m > 0 {
				r.f.Halt.LostCommits = int64(m)
			}
		},
		"window_over": func(_, v *yaml.Node) {
			s, ok := r.scalar(v, "halt: window_over")
			if !ok {
				return
			}
			d, err := time.ParseDuration(s.Value)
			if err != nil || d <= 0 {
				r.errf(v, "halt: window_over: want a duration such as 500ms or 2s, got %q", s.Value)
				return
			}
			r.f.Halt.WindowOver = d
		},
		"client_errors_over": func(_, v *yaml.Node) {
			s, _ := r.scalar(v, "halt: client_errors_over")
			if m := r.integer(v, "halt: client_errors_over", 0, -1); m > 0 || strings.TrimSpace(s.Value) == "0" {
				e := int64(m)
				r.f.Halt.ClientErrorsOver = &e
			}
		},
	})
}

// window reads {not_before: TIME, not_after: TIME}, RFC 3339.
func (r *fleetReader) window(n *yaml.Node) {
	var after *yaml.Node
	r.fields(n, "window", map[string]func(k, v *yaml.Node){
		"not_before": func(_, v *yaml.Node) { r.f.Window.NotBefore = r.time(v, "window: not_before") },
		"not_after":  func(_, v *yaml.Node) { after, r.f.Window.NotAfter = v, r.time(v, "window: not_after") },
	})
	w := r.f.Window
	if after != nil && !w.NotBefore.IsZero() && !w.NotAfter.IsZero() && !w.NotBefore.Before(w.NotAfter) {
		r.errf(after, "window: not_after %s is not after not_before %s", w.NotAfter.Format(time.RFC3339), w.NotBefore.Format(time.RFC3339))
	}
}

func (r *fleetReader) time(n *yaml.Node, what string) time.Time {
	s, ok := r.scalar(n, what)
	if !ok {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, s.Value)
	if err != nil {
		r.errf(n, "%s: want a time such as 2026-12-08T22:00:00Z (RFC 3339), got %q", what, s.Value)
	}
	return t
}
