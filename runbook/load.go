package runbook

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
)

// MaxFileSize bounds what the loader reads. A runbook is a page or two; a
// file far larger is a mistake (the wrong file, a generated blob) and would
// only slow every validation down.
const MaxFileSize = 1 << 20

// rawScalar is a scalar as written, with where it was written.
type rawScalar struct {
	Value string
	Pos   Pos
}

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

// rawFlag is a boolean key of a step.
type rawFlag struct {
	Set   bool
	Value bool
	Pos   Pos
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
	Timeout         *rawScalar
	OnFailure       *rawScalar
}

type rawSection struct {
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
var engineArgs = []string{"within", "every", "timeout"}

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)

// reader walks a YAML document strictly and collects problems.
type reader struct {
	file  string
	probs problems
}

func (r *reader) pos(n *yaml.Node) Pos { return Pos{File: r.file, Line: n.Line, Col: n.Column} }

func (r *reader) errf(n *yaml.Node, format string, args ...any) {
	r.probs.add(r.pos(n), format, args...)
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// parse reads one YAML document into its root node, with a syntax error
// turned into a positioned problem.
func (r *reader) parse(src []byte) *yaml.Node {
	if len(src) > MaxFileSize {
		r.probs.add(Pos{File: r.file}, "file is %s; the limit is %s", size(int64(len(src))), size(MaxFileSize))
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			r.probs.add(Pos{File: r.file}, "file is empty")
			return nil
		}
		r.probs = append(r.probs, syntaxProblem(r.file, err))
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		r.probs.add(Pos{File: r.file, Line: extra.Line, Col: extra.Column}, "a second YAML document; a file holds exactly one")
	} else if !errors.Is(err, io.EOF) {
		r.probs = append(r.probs, syntaxProblem(r.file, err))
		return nil
	}
	if len(doc.Content) == 0 {
		r.probs.add(Pos{File: r.file}, "file is empty")
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		r.errf(root, "want a mapping at the top level, got %s", kindName(root))
		return nil
	}
	return root
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func syntaxProblem(file string, err error) Problem {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line := 0
		fmt.Sscanf(m[1], "%d", &line)
		return Problem{Pos: Pos{File: file, Line: line}, Msg: "invalid YAML: " + m[2]}
	}
	return Problem{Pos: Pos{File: file}, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

func size(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// fields walks the keys of a mapping node: each key must be a known field,
// appear once, and is handed to its function with its value node.
func (r *reader) fields(n *yaml.Node, what string, handlers map[string]func(key, val *yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		r.errf(n, "%s: want a mapping, got %s", what, kindName(n))
		return
	}
	known := make([]string, 0, len(handlers))
	for k := range handlers {
		known = append(known, k)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			r.errf(k, "%s: want a name as key, got %s", what, kindName(k))
			continue
		}
		if seen[k.Value] {
			r.errf(k, "%s: %q is given twice", what, k.Value)
			continue
		}
		seen[k.Value] = true
		h, ok := handlers[k.Value]
		if !ok {
			msg := fmt.Sprintf("%s: unknown key %q", what, k.Value)
			if s := params.Suggest(k.Value, known); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			} else {
				msg += " (expected one of: " + strings.Join(sorted(known), ", ") + ")"
			}
			r.errf(k, "%s", msg)
			continue
		}
		if v.Kind == yaml.AliasNode {
			r.errf(v, "%s: %s: YAML aliases are not supported; write the value out", what, k.Value)
			continue
		}
		h(k, v)
	}
}

// scalar reads a text value; a null, a list or a mapping is a problem.
func (r *reader) scalar(n *yaml.Node, what string) (rawScalar, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		r.errf(n, "%s: want a value, got %s", what, kindName(n))
		return rawScalar{}, false
	}
	return rawScalar{Value: n.Value, Pos: r.pos(n)}, true
}

func (r *reader) str(n *yaml.Node, what string) string {
	s, _ := r.scalar(n, what)
	return s.Value
}

func (r *reader) flag(n *yaml.Node, what string) rawFlag {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		r.errf(n, "%s: want true or false, got %s", what, kindName(n))
		return rawFlag{}
	}
	return rawFlag{Set: true, Value: n.Value == "true", Pos: r.pos(n)}
}

func (r *reader) scalarPtr(n *yaml.Node, what string) *rawScalar {
	if s, ok := r.scalar(n, what); ok {
		return &s
	}
	return nil
}

// vars reads a `vars:` mapping of names to values (or ~ for "must be given").
func (r *reader) vars(n *yaml.Node, what string) []VarDecl {
	if n.Kind != yaml.MappingNode {
		r.errf(n, "%s: want a mapping of names to values, got %s", what, kindName(n))
		return nil
	}
	var out []VarDecl
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || !varName.MatchString(k.Value) {
			r.errf(k, "%s: %s is not a variable name (letters, digits and _, not starting with a digit)", what, kindName(k))
			continue
		}
		if seen[k.Value] {
			r.errf(k, "%s: %q is given twice", what, k.Value)
			continue
		}
		seen[k.Value] = true
		d := VarDecl{Name: k.Value, Pos: r.pos(k)}
		switch {
		case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
		case v.Kind == yaml.ScalarNode:
			d.Value, d.HasValue = v.Value, true
		default:
			r.errf(v, "%s: %s: want a value, got %s", what, k.Value, kindName(v))
			continue
		}
		out = append(out, d)
	}
	return out
}

// LoadRunbook parses a runbook. It checks the shape of the file (keys,
// types, names); what depends on variables and the inventory is checked by
// Resolve. The error, if any, is a *ValidationError listing every problem.
func LoadRunbook(file string, src []byte) (*Runbook, error) {
	r := &reader{file: file}
	sum := sha256.Sum256(src)
	rb := &Runbook{File: file, Digest: hex.EncodeToString(sum[:])}
	root := r.parse(src)
	if root == nil {
		return nil, r.probs.err()
	}
	var hasName, hasSteps bool
	r.fields(root, "runbook", map[string]func(k, v *yaml.Node){
		"name": func(k, v *yaml.Node) {
			hasName = true
			rb.Name = r.str(v, "name")
			if rb.Name != "" && !namePattern.MatchString(rb.Name) {
				r.errf(v, "name %q: use lower-case letters, digits, '-', '_' and '.'", rb.Name)
			}
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
	if !hasName {
		r.probs.add(r.pos(root), "runbook: missing key \"name\"")
	}
	if !hasSteps {
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

func (r *reader) sections(n *yaml.Node, what string) []*rawSection {
	if n.Kind != yaml.MappingNode {
		r.errf(n, "%s: want a mapping of section names to lists of steps, got %s", what, kindName(n))
		return nil
	}
	var out []*rawSection
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || !namePattern.MatchString(k.Value) {
			r.errf(k, "%s: %s is not a section name (lower-case letters, digits, '-', '_', '.')", what, kindName(k))
			continue
		}
		if seen[k.Value] {
			r.errf(k, "%s: section %q is given twice", what, k.Value)
			continue
		}
		seen[k.Value] = true
		steps := r.stepList(v, what+"."+k.Value)
		if v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
			r.errf(v, "%s.%s: the list is empty", what, k.Value)
		}
		out = append(out, &rawSection{Name: k.Value, Pos: r.pos(k), Steps: steps})
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

func (r *reader) step(n *yaml.Node, what string) *rawStep {
	s := &rawStep{Pos: r.pos(n)}
	if n.Kind == yaml.MappingNode {
		// Name the step in later messages as soon as it is known.
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "name" && n.Content[i+1].Kind == yaml.ScalarNode {
				what = fmt.Sprintf("step %q", n.Content[i+1].Value)
			}
		}
	}
	var hasName bool
	r.fields(n, what, map[string]func(k, v *yaml.Node){
		"name": func(k, v *yaml.Node) {
			hasName = true
			s.Name, s.NamePos = r.str(v, what+": name"), r.pos(v)
			if s.Name != "" && !namePattern.MatchString(s.Name) {
				r.errf(v, "%s: name: use lower-case letters, digits, '-', '_' and '.'", what)
			}
		},
		"description":        func(k, v *yaml.Node) { s.Description = r.str(v, what+": description") },
		"requires":           func(k, v *yaml.Node) { s.Requires = r.checkList(v, what+": requires") },
		"ensures":            func(k, v *yaml.Node) { s.Ensures = r.checkList(v, what+": ensures") },
		"action":             func(k, v *yaml.Node) { s.Action = r.call(v, what+": action", false) },
		"destructive":        func(k, v *yaml.Node) { s.Destructive = r.flag(v, what+": destructive") },
		"idempotent":         func(k, v *yaml.Node) { s.Idempotent = r.flag(v, what+": idempotent") },
		"point_of_no_return": func(k, v *yaml.Node) { s.PointOfNoReturn = r.flag(v, what+": point_of_no_return") },
		"timeout":            func(k, v *yaml.Node) { s.Timeout = r.scalarPtr(v, what+": timeout") },
		"on_failure":         func(k, v *yaml.Node) { s.OnFailure = r.scalarPtr(v, what+": on_failure") },
	})
	if !hasName && n.Kind == yaml.MappingNode {
		r.errf(n, "%s: missing key \"name\"", what)
	}
	return s
}

func (r *reader) checkList(n *yaml.Node, what string) []*rawCall {
	if n.Kind != yaml.SequenceNode {
		r.errf(n, "%s: want a list of checks, got %s", what, kindName(n))
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
		got := kindName(n)
		if n.Kind == yaml.MappingNode {
			keys := []string{}
			for i := 0; i < len(n.Content); i += 2 {
				keys = append(keys, n.Content[i].Value)
			}
			got = fmt.Sprintf("%d keys (%s)", len(keys), strings.Join(keys, ", "))
		}
		r.errf(n, "%s: %s is a mapping with one key, its kind, e.g. `%s`; got %s", what, noun, example, got)
		return nil
	}
	k, v := n.Content[0], n.Content[1]
	c := &rawCall{Kind: k.Value, Pos: r.pos(k)}
	switch {
	case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
		return c // a kind with no parameters
	case v.Kind != yaml.MappingNode:
		r.errf(v, "%s: %s: want a mapping of parameters, got %s", what, k.Value, kindName(v))
		return c
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		pk, pv := v.Content[i], v.Content[i+1]
		if pk.Kind != yaml.ScalarNode {
			r.errf(pk, "%s: %s: want a parameter name, got %s", what, k.Value, kindName(pk))
			continue
		}
		if seen[pk.Value] {
			r.errf(pk, "%s: %s: parameter %q is given twice", what, k.Value, pk.Value)
			continue
		}
		seen[pk.Value] = true
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

// LoadInventory parses an inventory: the cluster's name, its nodes, and the
// optional pooler and manager.
func LoadInventory(file string, src []byte) (*Inventory, error) {
	r := &reader{file: file}
	sum := sha256.Sum256(src)
	inv := &Inventory{File: file, Digest: hex.EncodeToString(sum[:]), Cluster: &cluster.Cluster{Nodes: map[string]*cluster.Node{}}}
	root := r.parse(src)
	if root == nil {
		return nil, r.probs.err()
	}
	var hasName, hasNodes bool
	r.fields(root, "inventory", map[string]func(k, v *yaml.Node){
		"cluster": func(k, v *yaml.Node) {
			hasName = true
			inv.Cluster.Name = r.str(v, "cluster")
			if inv.Cluster.Name != "" && !namePattern.MatchString(inv.Cluster.Name) {
				r.errf(v, "cluster %q: use lower-case letters, digits, '-', '_' and '.'", inv.Cluster.Name)
			}
		},
		"vars": func(k, v *yaml.Node) { inv.Vars = r.vars(v, "vars") },
		"nodes": func(k, v *yaml.Node) {
			hasNodes = true
			r.nodes(v, inv)
		},
		"pooler":  func(k, v *yaml.Node) { inv.Cluster.Pooler = r.pooler(v) },
		"manager": func(k, v *yaml.Node) { inv.Cluster.Manager = r.manager(v) },
	})
	if !hasName {
		r.probs.add(r.pos(root), "inventory: missing key \"cluster\" (the cluster's name)")
	}
	if !hasNodes {
		r.probs.add(r.pos(root), "inventory: missing key \"nodes\"")
	}
	return inv, r.probs.err()
}

func (r *reader) nodes(n *yaml.Node, inv *Inventory) {
	if n.Kind != yaml.MappingNode {
		r.errf(n, "nodes: want a mapping of node names to nodes, got %s", kindName(n))
		return
	}
	if len(n.Content) == 0 {
		r.errf(n, "nodes: the mapping is empty")
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || !namePattern.MatchString(k.Value) {
			r.errf(k, "nodes: %s is not a node name (lower-case letters, digits, '-', '_', '.')", kindName(k))
			continue
		}
		if _, dup := inv.Cluster.Nodes[k.Value]; dup {
			r.errf(k, "nodes: %q is given twice", k.Value)
			continue
		}
		node := &cluster.Node{Name: k.Value}
		what := fmt.Sprintf("node %q", k.Value)
		r.fields(v, what, map[string]func(k, v *yaml.Node){
			"conninfo": func(_, v *yaml.Node) { node.Conninfo = r.str(v, what+": conninfo") },
			"host":     func(_, v *yaml.Node) { node.Host = r.host(v, what+": host") },
			"data_dir": func(_, v *yaml.Node) { node.DataDir = r.str(v, what+": data_dir") },
			"bin_dir":  func(_, v *yaml.Node) { node.BinDir = r.str(v, what+": bin_dir") },
		})
		inv.Cluster.Nodes[k.Value] = node
		inv.order = append(inv.order, k.Value)
	}
}

// host reads `local`, or a mapping {transport: local|ssh, address: ...}.
func (r *reader) host(n *yaml.Node, what string) cluster.Host {
	var h cluster.Host
	if n.Kind == yaml.ScalarNode {
		h.Transport = n.Value
	} else {
		r.fields(n, what, map[string]func(k, v *yaml.Node){
			"transport": func(_, v *yaml.Node) { h.Transport = r.str(v, what+": transport") },
			"address":   func(_, v *yaml.Node) { h.Address = r.str(v, what+": address") },
		})
	}
	switch h.Transport {
	case "local":
	case "ssh":
		r.errf(n, "%s: transport \"ssh\" is not supported yet; run switchover on the database host with transport \"local\"", what)
	default:
		r.errf(n, "%s: unknown transport %q (expected \"local\")", what, h.Transport)
	}
	return h
}

func (r *reader) pooler(n *yaml.Node) *cluster.Pooler {
	p := &cluster.Pooler{Host: cluster.Host{Transport: "local"}}
	r.fields(n, "pooler", map[string]func(k, v *yaml.Node){
		"kind": func(_, v *yaml.Node) {
			p.Kind = r.str(v, "pooler: kind")
			if p.Kind != "pgbouncer" && p.Kind != "" {
				r.errf(v, "pooler: unknown kind %q (expected \"pgbouncer\")", p.Kind)
			}
		},
		"admin":    func(_, v *yaml.Node) { p.Admin = r.str(v, "pooler: admin") },
		"database": func(_, v *yaml.Node) { p.Database = r.str(v, "pooler: database") },
		"config":   func(_, v *yaml.Node) { p.Config = r.str(v, "pooler: config") },
		"host":     func(_, v *yaml.Node) { p.Host = r.host(v, "pooler: host") },
	})
	return p
}

func (r *reader) manager(n *yaml.Node) *cluster.Manager {
	m := &cluster.Manager{}
	r.fields(n, "manager", map[string]func(k, v *yaml.Node){
		"kind": func(_, v *yaml.Node) {
			m.Kind = r.str(v, "manager: kind")
			if m.Kind != "patroni" {
				r.errf(v, "manager: unknown kind %q (expected \"patroni\")", m.Kind)
			}
		},
		"urls": func(_, v *yaml.Node) {
			if v.Kind != yaml.SequenceNode {
				r.errf(v, "manager: urls: want a list, got %s", kindName(v))
				return
			}
			for _, e := range v.Content {
				m.URLs = append(m.URLs, r.str(e, "manager: urls"))
			}
		},
	})
	return m
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
