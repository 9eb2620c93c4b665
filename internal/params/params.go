// Package params describes and decodes the parameters of checks and steps.
//
// Every registered check and step declares its parameters as a list of Spec.
// The runbook loader uses the specs to reject unknown or mistyped parameters
// with the position of the offending YAML node, and `switchover checks` and
// `switchover steps` print them, so the documentation is generated from the
// same declaration the code uses.
package params

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Type is the type of a parameter value. The zero value is Unknown.
type Type int

// The parameter types a runbook can give.
const (
	Unknown  Type = iota
	String        // any text
	Duration      // a Go duration: 500ms, 30s, 5m
	Int           // a whole number
	Bool          // true or false
	Strings       // a list of text values
	Bytes         // a size: 16MB, 512kB, 1048576
	Node          // the name of a node in the inventory
	Nodes         // a list of node names; empty means every node
)

// String names the type as the documentation shows it.
func (t Type) String() string {
	switch t {
	case String:
		return "string"
	case Duration:
		return "duration"
	case Int:
		return "int"
	case Bool:
		return "bool"
	case Strings:
		return "list of strings"
	case Bytes:
		return "size"
	case Node:
		return "node"
	case Nodes:
		return "list of nodes"
	}
	return "unknown"
}

// Spec declares one parameter of a check or a step.
type Spec struct {
	Name     string
	Type     Type
	Required bool
	Default  string   // literal default, parsed like user input; empty means none
	Enum     []string // allowed values, when the set is closed
	Doc      string
}

// Raw is a parameter value as the runbook gives it, after variable
// substitution: a scalar, or a list of scalars for Strings.
type Raw struct {
	Scalar string
	List   []string
	IsList bool
}

// Values holds decoded, typed parameter values. A missing optional
// parameter without a default reads as the zero value of its type.
type Values struct {
	m map[string]any
}

// NewValues builds Values directly; tests and programmatic callers use it.
func NewValues(m map[string]any) Values { return Values{m: m} }

// Has reports whether the parameter was given or has a default.
func (v Values) Has(name string) bool { _, ok := v.m[name]; return ok }

// String returns a String parameter.
func (v Values) String(name string) string { s, _ := v.m[name].(string); return s }

// Duration returns a Duration parameter.
func (v Values) Duration(name string) time.Duration {
	d, _ := v.m[name].(time.Duration)
	return d
}

// Int returns an Int or Bytes parameter.
func (v Values) Int(name string) int64 { i, _ := v.m[name].(int64); return i }

// Bool returns a Bool parameter.
func (v Values) Bool(name string) bool { b, _ := v.m[name].(bool); return b }

// Strings returns a Strings parameter.
func (v Values) Strings(name string) []string { s, _ := v.m[name].([]string); return s }

// Node returns a Node parameter: a node's name, without the blanks a
// runbook or a caller may have put around it, so that every check and step
// names the same node for the same text. "" means none (this machine, for
// the kinds that allow it).
func (v Values) Node(name string) string { return strings.TrimSpace(v.String(name)) }

// Nodes returns a Nodes parameter: each name as Node gives it, in order.
// Empty names and repeats are kept for the caller to reject or skip.
func (v Values) Nodes(name string) []string {
	list := v.Strings(name)
	if list == nil {
		return nil
	}
	out := make([]string, len(list))
	for i, n := range list {
		out[i] = strings.TrimSpace(n)
	}
	return out
}

// Map returns a copy of the decoded values, for journals and plans.
func (v Values) Map() map[string]any {
	out := make(map[string]any, len(v.m))
	for k, x := range v.m {
		if d, ok := x.(time.Duration); ok {
			out[k] = d.String()
			continue
		}
		out[k] = x
	}
	return out
}

// Problem is one thing wrong with a parameter. Param is empty when the
// problem concerns the parameter set as a whole (a missing required one).
type Problem struct {
	Param string
	Msg   string
}

// Decode checks raw against specs and converts each value to its type.
// It returns every problem, not only the first.
func Decode(specs []Spec, raw map[string]Raw) (Values, []Problem) {
	out := Values{m: map[string]any{}}
	var probs []Problem
	byName := map[string]Spec{}
	for _, s := range specs {
		byName[s.Name] = s
	}
	names := make([]string, 0, len(raw))
	for n := range raw {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s, ok := byName[n]
		if !ok {
			msg := fmt.Sprintf("unknown parameter %q", n)
			if sug := Suggest(n, specNames(specs)); sug != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", sug)
			} else if len(specs) > 0 {
				msg += " (expected one of: " + strings.Join(specNames(specs), ", ") + ")"
			} else {
				msg += " (it takes no parameters)"
			}
			probs = append(probs, Problem{Param: n, Msg: msg})
			continue
		}
		val, err := convert(s, raw[n])
		if err != nil {
			probs = append(probs, Problem{Param: n, Msg: fmt.Sprintf("parameter %q: %v", n, err)})
			continue
		}
		out.m[n] = val
	}
	for _, s := range specs {
		if _, ok := raw[s.Name]; ok {
			continue
		}
		if s.Required {
			probs = append(probs, Problem{Msg: fmt.Sprintf("missing required parameter %q (%s)", s.Name, s.Type)})
			continue
		}
		if s.Default != "" {
			val, err := convert(s, Raw{Scalar: s.Default})
			if err != nil {
				panic(fmt.Sprintf("params: bad default for %q: %v", s.Name, err))
			}
			out.m[s.Name] = val
		}
	}
	return out, probs
}

func specNames(specs []Spec) []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = s.Name
	}
	return out
}

func convert(s Spec, r Raw) (any, error) {
	if s.Type == Strings || s.Type == Nodes {
		list := []string{r.Scalar}
		if r.IsList {
			list = append([]string(nil), r.List...)
		}
		if len(s.Enum) > 0 {
			for i, x := range list {
				v := strings.TrimSpace(x)
				if !slices.Contains(s.Enum, v) {
					return nil, fmt.Errorf("want each of %s, got %q", strings.Join(s.Enum, ", "), v)
				}
				list[i] = v
			}
		}
		return list, nil
	}
	if r.IsList {
		return nil, fmt.Errorf("want a %s, got a list", s.Type)
	}
	v := strings.TrimSpace(r.Scalar)
	if len(s.Enum) > 0 && !slices.Contains(s.Enum, v) {
		return nil, fmt.Errorf("want one of %s, got %q", strings.Join(s.Enum, ", "), v)
	}
	switch s.Type {
	case String:
		if len(s.Enum) > 0 {
			return v, nil // the allowed value, without the space around it
		}
		return r.Scalar, nil
	case Node:
		return v, nil // "" means this machine; the loader checks names against the inventory
	case Duration:
		d, err := time.ParseDuration(v)
		if err != nil {
			return nil, fmt.Errorf("want a duration such as 500ms, 30s or 5m, got %q", v)
		}
		if d < 0 {
			return nil, fmt.Errorf("want a positive duration, got %q", v)
		}
		return d, nil
	case Int:
		i, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("want a whole number, got %q", v)
		}
		return i, nil
	case Bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("want true or false, got %q", v)
		}
		return b, nil
	case Bytes:
		b, err := ParseBytes(v)
		if err != nil {
			return nil, err
		}
		return b, nil
	}
	return nil, fmt.Errorf("parameter type %s cannot be decoded", s.Type)
}

// ParseBytes reads a size such as 16MB, 512kB or 1048576 (bytes).
func ParseBytes(v string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"kB", 1 << 10}, {"KB", 1 << 10}, {"B", 1}}
	num, mult := v, int64(1)
	for _, u := range units {
		if strings.HasSuffix(v, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(v, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("want a size such as 16MB, 512kB or 1048576, got %q", v)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q is too large", v)
	}
	return n * mult, nil
}

// FormatBytes renders a size the way runbooks write it, the inverse of
// ParseBytes: 16MB, 512kB, or a plain byte count when it is not a whole
// number of a unit.
func FormatBytes(n int64) string {
	units := []struct {
		suffix string
		mult   int64
	}{{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"kB", 1 << 10}}
	for _, u := range units {
		if n >= u.mult && n%u.mult == 0 {
			return fmt.Sprintf("%d%s", n/u.mult, u.suffix)
		}
	}
	if n == 1 {
		return "1 byte"
	}
	return fmt.Sprintf("%d bytes", n)
}

// Suggest returns the candidate closest to s by edit distance, when it is
// close enough to be a likely typo, or "". Short names are held to a tight
// bound, since any short name is a few edits from any other: "wait" is not
// a typo of "dir".
func Suggest(s string, candidates []string) string {
	best, bestD := "", max(2, len(s)/3)+1
	for _, c := range candidates {
		if d := distance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
