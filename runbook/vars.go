package runbook

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

var (
	varName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// varRef finds ${name}; $${ is an escaped literal "${".
	varRef = regexp.MustCompile(`\$\$\{|\$\{([^}]*)\}`)
)

// refs returns the variable names s refers to, in order of appearance.
func refs(s string) []string {
	var out []string
	for _, m := range varRef.FindAllStringSubmatch(s, -1) {
		if m[0] != "$${" {
			out = append(out, m[1])
		}
	}
	return out
}

// expand substitutes ${name} in s with vars; $${ becomes a literal ${.
// It returns the names it could not find.
func expand(s string, vars map[string]string) (string, []string) {
	var missing []string
	out := varRef.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$${" {
			return "${"
		}
		name := m[2 : len(m)-1]
		v, ok := vars[name]
		if !ok {
			missing = append(missing, name)
			return m
		}
		return v
	})
	return out, missing
}

// varSource is one layer of variable values: the runbook's defaults, the
// inventory, the command line.
type varSource struct {
	label string // "runbook", "inventory", "--var"
	decls []VarDecl
}

// resolveVars merges the layers (later ones win) and expands variables that
// refer to other variables, reporting undefined names and cycles.
func resolveVars(layers []varSource, probs *problems) map[string]string {
	type entry struct {
		decl  VarDecl
		label string
	}
	raw := map[string]entry{}
	for _, l := range layers {
		for _, d := range l.decls {
			if !d.HasValue {
				if _, ok := raw[d.Name]; !ok {
					raw[d.Name] = entry{decl: d, label: l.label}
				}
				continue
			}
			raw[d.Name] = entry{decl: d, label: l.label}
		}
	}
	out := map[string]string{}
	state := map[string]int{} // 0 new, 1 visiting, 2 done
	var visit func(name string, chain []string) (string, bool)
	visit = func(name string, chain []string) (string, bool) {
		e := raw[name]
		switch state[name] {
		case 2:
			v, ok := out[name]
			return v, ok
		case 1:
			i := 0
			for chain[i] != name {
				i++
			}
			cycle := append(append([]string(nil), chain[i:]...), name)
			probs.add(e.decl.Pos, "variable %q refers to itself: %s", name, strings.Join(cycle, " -> "))
			return "", false
		}
		state[name] = 1
		defer func() { state[name] = 2 }()
		if !e.decl.HasValue {
			probs.add(e.decl.Pos, "variable %q has no value: give it in the inventory's vars or with --var %s=VALUE", name, name)
			return "", false
		}
		val := e.decl.Value
		ok := true
		for _, ref := range refs(val) {
			if _, known := raw[ref]; !known {
				probs.add(e.decl.Pos, "variable %q refers to undefined variable %q%s", name, ref, suggestVar(ref, raw))
				ok = false
				continue
			}
			if _, good := visit(ref, append(chain, name)); !good {
				ok = false
			}
		}
		if !ok {
			return "", false
		}
		v, _ := expand(val, out)
		out[name] = v
		return v, true
	}
	names := make([]string, 0, len(raw))
	for n := range raw {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		visit(n, nil)
	}
	return out
}

func suggestVar[T any](name string, known map[string]T) string {
	cands := make([]string, 0, len(known))
	for k := range known {
		cands = append(cands, k)
	}
	if s := suggest(name, cands); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}
