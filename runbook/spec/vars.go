package spec

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

var (
	varName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// varRef finds ${name}; $${ is an escaped literal "${"; a "${" with no
	// closing brace matches alone, to be reported.
	varRef = regexp.MustCompile(`\$\$\{|\$\{([^}]*)\}|\$\{`)
)

// refs returns the variable names s refers to, in order of appearance.
// Malformed references are left to badRefs.
func refs(s string) []string {
	var out []string
	for _, m := range varRef.FindAllStringSubmatch(s, -1) {
		if m[0] != "$${" && m[0] != "${" && varName.MatchString(m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

// badRefs describes each malformed reference in s: a "${" never closed, or
// braces around something that is not a variable name. Both are likely
// meant for the shell, which needs $${.
func badRefs(s string) []string {
	var out []string
	for _, m := range varRef.FindAllStringSubmatch(s, -1) {
		switch {
		case m[0] == "$${":
		case m[0] == "${":
			out = append(out, `"${" has no closing "}" (write $${ for a literal ${)`)
		case !varName.MatchString(m[1]):
			out = append(out, fmt.Sprintf("%q is not a variable reference: a name is letters, digits and _ (write $${ for a literal ${)", m[0]))
		}
	}
	return out
}

// maxValueSize bounds a value after substitution. Variables that refer to
// others twice over double at each level; without a bound, forty of them
// would ask for a terabyte.
const maxValueSize = MaxFileSize

// errTooLong says a value grew past maxValueSize.
var errTooLong = fmt.Errorf("expands to more than %d bytes", maxValueSize)

// expand substitutes ${name} in s with vars; $${ becomes a literal ${.
// It returns the names it could not find, and errTooLong when the result
// would exceed maxValueSize. Malformed references stay as they are.
func expand(s string, vars map[string]string) (string, []string, error) {
	var missing []string
	var b strings.Builder
	last := 0
	for _, m := range varRef.FindAllStringSubmatchIndex(s, -1) {
		b.WriteString(s[last:m[0]])
		last = m[1]
		whole := s[m[0]:m[1]]
		switch {
		case whole == "$${":
			b.WriteString("${")
		case whole == "${" || !varName.MatchString(s[m[2]:m[3]]):
			b.WriteString(whole)
		default:
			v, ok := vars[s[m[2]:m[3]]]
			if !ok {
				missing = append(missing, s[m[2]:m[3]])
				v = whole
			}
			if b.Len()+len(v) > maxValueSize {
				return "", missing, errTooLong
			}
			b.WriteString(v)
		}
	}
	b.WriteString(s[last:])
	return b.String(), missing, nil
}

// varSource is one layer of variable values: the runbook's defaults, the
// inventory, the command line.
type varSource struct {
	label string // "runbook", "inventory", "--var"
	decls []VarDecl
}

// resolveVars merges the layers (later ones win) and expands variables that
// refer to other variables, reporting undefined names and cycles. It also
// returns the variables that are declared but have no value because of a
// problem already reported, so that their uses are not reported again.
func resolveVars(layers []varSource, probs *problems) (vals map[string]string, broken map[string]bool) {
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
	broken = map[string]bool{}
	state := map[string]int{} // 0 new, 1 visiting, 2 done
	total := 0                // bytes of expanded values
	overBudget := false       // total went over maxPlanSize
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
			if cycle := chain[i:]; len(cycle) == 1 {
				probs.add(e.decl.Pos, "variable %q refers to itself (write $${%s} for a literal ${%s})", name, name, name)
			} else {
				probs.add(e.decl.Pos, "variables %s refer to each other in a cycle: %s",
					quoteJoin(sorted(cycle)), strings.Join(append(append([]string(nil), cycle...), name), " -> "))
			}
			return "", false
		}
		state[name] = 1
		defer func() { state[name] = 2 }()
		if !e.decl.HasValue {
			broken[name] = true
			probs.add(e.decl.Pos, "variable %q has no value: give it in the inventory's vars or with --var %s=VALUE", name, name)
			return "", false
		}
		val := e.decl.Value
		ok := true
		for _, msg := range badRefs(val) {
			probs.add(e.decl.Pos, "variable %q: %s", name, msg)
		}
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
			broken[name] = true
			return "", false
		}
		v, _, err := expand(val, out)
		if err == nil && total+len(v) > maxPlanSize {
			broken[name] = true
			if !overBudget { // once: the variables after it are over too
				overBudget = true
				probs.add(e.decl.Pos, "variable %q makes the variables add up to more than %d bytes", name, maxPlanSize)
			}
			return "", false
		}
		if err != nil {
			broken[name] = true
			probs.add(e.decl.Pos, "variable %q %v", name, err)
			return "", false
		}
		total += len(v)
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
	return out, broken
}

// quoteJoin renders names as "a", "b" and "c".
func quoteJoin(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " and " + q[len(q)-1]
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
