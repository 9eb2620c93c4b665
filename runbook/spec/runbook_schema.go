package spec

// The runbook schema: which keys a runbook, its steps, checks and actions
// have, read into raw values that Resolve checks against variables and the
// inventory.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/switchover/switchover/internal/kinds"
)

// rawArg is one parameter of a check or an action, before substitution.
type rawArg struct {
	Name   string
	Pos    Pos
	Scalar rawScalar
	List   []rawScalar
	IsList bool
}

// rawCall is a check or an action: its kind and parameters as written.
type rawCall struct {
	Kind    string
	Pos     Pos
	Args    []*rawArg
	Within  *rawScalar
	Every   *rawScalar
	Timeout *rawScalar
}

type rawStep struct {
	Pos             Pos
	Name            string
	NamePos         Pos
	Description     string
	Requires        []*rawCall
	Action          *rawCall
	Ensures         []*rawCall
	Destructive     rawFlag
	Idempotent      rawFlag
	PointOfNoReturn rawFlag
	ApproveWith     []rawScalar
	ApproveWithPos  Pos
	Timeout         *rawScalar
	OnFailure       *rawScalar
	// Broken is set when the loader found problems in the step; the
	// resolver then spares it knock-on complaints (a misspelt action: key
	// need not also be reported as a step without an action).
	Broken bool
}

// SectionDecl is a rollback or repair section as the runbook declares it.
type SectionDecl struct {
	Name  string
	Pos   Pos
	Steps []*rawStep
}

type rawDefaults struct {
	Timeout      *rawScalar
	CheckTimeout *rawScalar
	PollInterval *rawScalar
	OnFailure    *rawScalar
}

// engineArgs are keys every check accepts beside its own parameters; the
// engine, not the check, acts on them.
var engineArgs = func() []string {
	var names []string
	for _, p := range kinds.CheckEngineParams {
		names = append(names, p.Name)
	}
	return names
}()

// LoadRunbook parses a runbook. It checks the shape of the file (keys,
// types, names); what depends on variables and the inventory is checked by
// Resolve. The error, if any, is a *ValidationError listing every problem.
func LoadRunbook(file string, src []byte) (*Runbook, error) {
	r := &reader{file: file, reported: map[*yaml.Node]bool{}}
	sum := sha256.Sum256(src)
	rb := &Runbook{File: file, Digest: hex.EncodeToString(sum[:])}
	root := r.parse(src, "a runbook (name:, steps:, ...)")
	if root == nil {
		return nil, r.probs.err()
	}
	var hasName, hasSteps bool
	suggested := r.fields(root, "runbook", map[string]func(k, v *yaml.Node){
		"name": func(k, v *yaml.Node) {
			hasName = true
			rb.Name = r.name(v, "name")
		},
		"description": func(k, v *yaml.Node) { rb.Description = r.str(v, "description") },
		"vars":        func(k, v *yaml.Node) { rb.Vars = r.vars(v, "vars") },
		"defaults":    func(k, v *yaml.Node) { rb.Defaults = r.defaults(v) },
		"steps": func(k, v *yaml.Node) {
			hasSteps = true
			rb.Steps = r.stepList(v, "steps")
			if v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
				r.errf(v, "steps: the list is empty; a runbook needs at least one step")
			}
		},
		"rollback": func(k, v *yaml.Node) { rb.Rollback = r.sections(v, "rollback") },
		"repair":   func(k, v *yaml.Node) { rb.Repair = r.sections(v, "repair") },
		"finally":  func(k, v *yaml.Node) { rb.Finally = r.stepList(v, "finally") },
	})
	if !hasName && !suggested["name"] {
		r.probs.add(r.pos(root), "runbook: missing key \"name\"")
	}
	if !hasSteps && !suggested["steps"] {
		r.probs.add(r.pos(root), "runbook: missing key \"steps\"")
	}
	return rb, r.probs.err()
}

func (r *reader) defaults(n *yaml.Node) rawDefaults {
	var d rawDefaults
	r.fields(n, "defaults", map[string]func(k, v *yaml.Node){
		"timeout":       func(k, v *yaml.Node) { d.Timeout = r.scalarPtr(v, "defaults.timeout") },
		"check_timeout": func(k, v *yaml.Node) { d.CheckTimeout = r.scalarPtr(v, "defaults.check_timeout") },
		"poll_interval": func(k, v *yaml.Node) { d.PollInterval = r.scalarPtr(v, "defaults.poll_interval") },
		"on_failure":    func(k, v *yaml.Node) { d.OnFailure = r.scalarPtr(v, "defaults.on_failure") },
	})
	return d
}

func (r *reader) sections(n *yaml.Node, what string) []*SectionDecl {
	if n.Kind != yaml.MappingNode {
		r.errf(n, "%s: want a mapping of section names to lists of steps, got %s", what, kindName(n))
		return nil
	}
	var out []*SectionDecl
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || !namePattern.MatchString(k.Value) {
			r.errf(k, "%s: %s is not a section name (%s)", what, kindName(k), nameRule)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			r.errf(k, "%s: section %q is given twice (first at line %d)", what, k.Value, first.Line)
			continue
		}
		seen[k.Value] = k
		steps := r.stepList(v, what+"."+k.Value)
		if v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
			r.errf(v, "%s.%s: the list is empty", what, k.Value)
		}
		out = append(out, &SectionDecl{Name: k.Value, Pos: r.pos(k), Steps: steps})
	}
	return out
}

func (r *reader) stepList(n *yaml.Node, what string) []*rawStep {
	if n.Kind != yaml.SequenceNode {
		r.errf(n, "%s: want a list of steps, got %s", what, kindName(n))
		return nil
	}
	out := make([]*rawStep, 0, len(n.Content))
	for i, item := range n.Content {
		out = append(out, r.step(item, fmt.Sprintf("%s[%d]", what, i)))
	}
	return out
}

func (r *reader) step(n *yaml.Node, what string) (s *rawStep) {
	s = &rawStep{Pos: r.pos(n)}
	before := len(r.probs)
	defer func() { s.Broken = len(r.probs) > before }()
	if n.Kind != yaml.MappingNode {
		r.errf(n, "%s: want a step, a mapping with name: and action:, requires: or ensures:; got %s", what, kindName(n))
		return s
	}
	// Name the step in later messages as soon as it is known.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if v := n.Content[i+1]; n.Content[i].Value == "name" && v.Kind == yaml.ScalarNode && v.Tag != "!!null" && v.Value != "" {
			what = fmt.Sprintf("step %q", v.Value)
		}
	}
	var hasName bool
	r.fields(n, what, map[string]func(k, v *yaml.Node){
		"name": func(k, v *yaml.Node) {
			hasName = true
			s.Name, s.NamePos = r.name(v, what+": name"), r.pos(v)
		},
		"description":        func(k, v *yaml.Node) { s.Description = r.str(v, what+": description") },
		"requires":           func(k, v *yaml.Node) { s.Requires = r.checkList(v, what+": requires") },
		"ensures":            func(k, v *yaml.Node) { s.Ensures = r.checkList(v, what+": ensures") },
		"action":             func(k, v *yaml.Node) { s.Action = r.call(v, what+": action", false) },
		"destructive":        func(k, v *yaml.Node) { s.Destructive = r.flag(v, what+": destructive") },
		"idempotent":         func(k, v *yaml.Node) { s.Idempotent = r.flag(v, what+": idempotent") },
		"point_of_no_return": func(k, v *yaml.Node) { s.PointOfNoReturn = r.flag(v, what+": point_of_no_return") },
		"approve_with": func(k, v *yaml.Node) {
			s.ApproveWithPos = r.pos(k)
			if v.Kind != yaml.SequenceNode {
				r.errf(v, "%s: approve_with: want a list of step names, got %s", what, kindName(v))
				return
			}
			for _, e := range v.Content {
				if sc, ok := r.scalar(e, what+": approve_with"); ok {
					s.ApproveWith = append(s.ApproveWith, sc)
				}
			}
		},
		"timeout":    func(k, v *yaml.Node) { s.Timeout = r.scalarPtr(v, what+": timeout") },
		"on_failure": func(k, v *yaml.Node) { s.OnFailure = r.scalarPtr(v, what+": on_failure") },
	})
	if !hasName {
		r.errf(n, "%s: missing key \"name\"", what)
	}
	return s
}

func (r *reader) checkList(n *yaml.Node, what string) []*rawCall {
	if n.Kind != yaml.SequenceNode {
		hint := ""
		if n.Kind == yaml.MappingNode {
			hint = " (start each check with -)"
		}
		r.errf(n, "%s: want a list of checks, got %s%s", what, kindName(n), hint)
		return nil
	}
	var out []*rawCall
	for _, item := range n.Content {
		if c := r.call(item, what, true); c != nil {
			out = append(out, c)
		}
	}
	return out
}

// call reads `kind: {param: value, ...}`: a mapping with exactly one key.
func (r *reader) call(n *yaml.Node, what string, isCheck bool) *rawCall {
	noun, example := "an action", "exec: {command: \"...\"}"
	if isCheck {
		noun, example = "a check", "tcp.reachable: {address: \"db1:5432\"}"
	}
	if n.Kind != yaml.MappingNode || len(n.Content) != 2 {
		got, hint := kindName(n), ""
		if n.Kind == yaml.MappingNode && len(n.Content) == 0 {
			got = "an empty mapping"
		} else if n.Kind == yaml.MappingNode {
			keys := []string{}
			for i := 0; i < len(n.Content); i += 2 {
				keys = append(keys, n.Content[i].Value)
				if isCheck && contains(engineArgs, n.Content[i].Value) {
					hint = "; within, every and timeout go among the check's parameters, e.g. `exec: {command: \"...\", within: 30s}`"
				}
			}
			got = fmt.Sprintf("%d keys (%s)", len(keys), strings.Join(keys, ", "))
			if hint == "" && isCheck {
				hint = "; start each check with its own -"
			} else if hint == "" {
				hint = "; a step has one action: split it into steps"
			}
		}
		r.errf(n, "%s: %s is a mapping with one key, its kind, e.g. `%s`; got %s%s", what, noun, example, got, hint)
		return nil
	}
	k, v := n.Content[0], n.Content[1]
	if k.Kind != yaml.ScalarNode {
		r.errf(k, "%s: want the kind of %s as key, e.g. `%s`; got %s", what, noun, example, kindName(k))
		return nil
	}
	c := &rawCall{Kind: k.Value, Pos: r.pos(k)}
	switch {
	case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
		return c // a kind with no parameters
	case v.Kind != yaml.MappingNode:
		r.errf(v, "%s: %s: want a mapping of parameters, e.g. `%s: {name: value, ...}`; got %s", what, k.Value, k.Value, kindName(v))
		return nil
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		pk, pv := v.Content[i], v.Content[i+1]
		if pk.Kind != yaml.ScalarNode {
			r.errf(pk, "%s: %s: want a parameter name, got %s", what, k.Value, kindName(pk))
			continue
		}
		if first, dup := seen[pk.Value]; dup {
			r.errf(pk, "%s: %s: parameter %q is given twice (first at line %d)", what, k.Value, pk.Value, first.Line)
			continue
		}
		seen[pk.Value] = pk
		if isCheck && contains(engineArgs, pk.Value) {
			s := r.scalarPtr(pv, fmt.Sprintf("%s: %s: %s", what, k.Value, pk.Value))
			switch pk.Value {
			case "within":
				c.Within = s
			case "every":
				c.Every = s
			case "timeout":
				c.Timeout = s
			}
			continue
		}
		a := &rawArg{Name: pk.Value, Pos: r.pos(pk)}
		switch {
		case pv.Kind == yaml.ScalarNode && pv.Tag == "!!null":
			r.errf(pv, "%s: %s: parameter %q has no value", what, k.Value, pk.Value)
			continue
		case pv.Kind == yaml.ScalarNode:
			a.Scalar = rawScalar{Value: pv.Value, Pos: r.pos(pv)}
		case pv.Kind == yaml.SequenceNode:
			a.IsList = true
			for _, e := range pv.Content {
				if s, ok := r.scalar(e, fmt.Sprintf("%s: %s: %s", what, k.Value, pk.Value)); ok {
					a.List = append(a.List, s)
				}
			}
		default:
			r.errf(pv, "%s: %s: parameter %q: want a value or a list of values, got %s", what, k.Value, pk.Value, kindName(pv))
			continue
		}
		c.Args = append(c.Args, a)
	}
	return c
}
