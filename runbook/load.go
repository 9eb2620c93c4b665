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
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/transport"
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
	ApproveWith     []rawScalar
	ApproveWithPos  Pos
	Timeout         *rawScalar
	OnFailure       *rawScalar
	// Broken is set when the loader found problems in the step; the
	// resolver then spares it knock-on complaints (a misspelt action: key
	// need not also be reported as a step without an action).
	Broken bool
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

// nameRule says what namePattern allows, for messages.
const nameRule = "lower-case letters, digits, '-', '_' and '.', starting with a letter or digit"

// name reads the name of a runbook, a step or a cluster.
func (r *reader) name(n *yaml.Node, what string) string {
	s, ok := r.scalar(n, what)
	switch {
	case !ok:
	case s.Value == "":
		r.errf(n, "%s: want a name (%s), got \"\"", what, nameRule)
	case !namePattern.MatchString(s.Value):
		r.errf(n, "%s %q: use %s", what, s.Value, nameRule)
	}
	return s.Value
}

// reader walks a YAML document strictly and collects problems.
type reader struct {
	file     string
	probs    problems
	reported map[*yaml.Node]bool // aliases and merge keys, said once
}

func (r *reader) pos(n *yaml.Node) Pos { return Pos{File: r.file, Line: n.Line, Col: n.Column} }

// errf adds a problem at n. Aliases and merge keys are reported once, where
// parse finds them, so nothing more is said about them.
func (r *reader) errf(n *yaml.Node, format string, args ...any) {
	if r.reported[n] {
		return
	}
	r.probs.add(r.pos(n), format, args...)
}

const mergeTag = "!!merge"

// aliases reports every YAML alias and merge key under n. Values are read
// as written, so an alias would be a value the file does not show where it
// is used; writing it out keeps a runbook readable top to bottom.
func (r *reader) aliases(n *yaml.Node) {
	switch n.Kind {
	case yaml.AliasNode:
		r.reported[n] = true
		r.probs.add(r.pos(n), "YAML alias *%s: aliases are not supported; write the value out", n.Value)
		return
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; k.Tag == mergeTag {
				r.reported[k] = true
				r.probs.add(r.pos(k), "YAML merge key <<: merge keys are not supported; write the keys out")
				continue
			}
			r.aliases(n.Content[i])
			r.aliases(n.Content[i+1])
		}
		return
	}
	for _, c := range n.Content {
		r.aliases(c)
	}
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
// turned into a positioned problem. what names the document and its main
// keys for a message about the top level, e.g. "a runbook (name:, steps:)".
func (r *reader) parse(src []byte, what string) *yaml.Node {
	if len(src) > MaxFileSize {
		r.probs.add(Pos{File: r.file}, "file is %d bytes, over the limit of %d (%s): is this the right file?",
			len(src), MaxFileSize, size(MaxFileSize))
		return nil
	}
	empty := func() {
		if len(bytes.TrimSpace(src)) == 0 {
			r.probs.add(Pos{File: r.file}, "file is empty; want %s", what)
		} else {
			r.probs.add(Pos{File: r.file}, "file holds only comments; want %s", what)
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			empty()
			return nil
		}
		r.probs = append(r.probs, syntaxProblem(r.file, src, err))
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		r.probs.add(Pos{File: r.file, Line: extra.Line, Col: extra.Column}, "a second YAML document; a file holds exactly one (remove the --- line)")
	} else if !errors.Is(err, io.EOF) {
		r.probs = append(r.probs, syntaxProblem(r.file, src, err))
		return nil
	}
	if len(doc.Content) == 0 {
		empty()
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		r.errf(root, "want %s, a mapping at the top level; got %s", what, kindName(root))
		return nil
	}
	r.aliases(root)
	return root
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlParserProblems are the messages of the YAML parser (as opposed to its
// scanner). The YAML library counts their lines from 0 and those of
// scanner errors from 1; a parser error on the first line has no line.
var yamlParserProblems = []string{
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"did not find expected '-' indicator",
	"did not find expected <document start>",
	"did not find expected <stream-start>",
	"did not find expected key",
	"did not find expected node content",
	"found duplicate %TAG directive",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found undefined tag handle",
}

// yamlHints explain the YAML library's commonest messages in a runbook's terms.
var yamlHints = map[string]string{
	"did not find expected ',' or '}'":               "a {...} mapping is not closed, or lacks a comma",
	"did not find expected ',' or ']'":               "a [...] list is not closed, or lacks a comma",
	"did not find expected key":                      "check the indentation of this line and the ones before it",
	"mapping values are not allowed in this context": "quote a value that holds \": \", or check the indentation",
	"found character that cannot start any token":    "quote a value that starts with @, ` or %",
}

// syntaxProblem turns an error of the YAML library into a positioned
// problem, with the line it means counted from 1.
func syntaxProblem(file string, src []byte, err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	pos := Pos{File: file}
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		fmt.Sscanf(m[1], "%d", &pos.Line)
		msg = m[2]
		if contains(yamlParserProblems, msg) {
			pos.Line++
		}
	} else if contains(yamlParserProblems, msg) {
		pos.Line = 1
	}
	switch {
	case strings.Contains(msg, "tab character"):
		// The library reports where the value before the tab began.
		if p, ok := firstIndentTab(src, pos.Line); ok {
			p.File = file
			return Problem{Pos: p, Msg: "invalid YAML: a tab in the indentation; indent with spaces"}
		}
	case strings.HasPrefix(msg, "unknown anchor '"):
		name := strings.TrimSuffix(strings.TrimPrefix(msg, "unknown anchor '"), "' referenced")
		if i := bytes.Index(src, []byte("*"+name)); i >= 0 {
			pos.Line = bytes.Count(src[:i], []byte("\n")) + 1
			pos.Col = utf8.RuneCount(src[bytes.LastIndexByte(src[:i], '\n')+1:i]) + 1
		}
		msg = fmt.Sprintf("alias *%s refers to no anchor &%s (and aliases are not supported: write the value out)", name, name)
	case msg == "control characters are not allowed" || msg == "invalid leading UTF-8 octet" ||
		strings.HasPrefix(msg, "invalid trailing UTF-8 octet") || strings.HasPrefix(msg, "incomplete UTF-8 octet sequence"):
		if p, ok := firstBadChar(src); ok {
			pos = p
			pos.File = file
		}
	}
	if h, ok := yamlHints[msg]; ok {
		msg += " (" + h + ")"
	}
	return Problem{Pos: pos, Msg: "invalid YAML: " + msg}
}

// firstIndentTab finds the first tab in the indentation of a line, from
// line from on (counted from 1).
func firstIndentTab(src []byte, from int) (Pos, bool) {
	for i, line := range strings.Split(string(src), "\n") {
		if i+1 < from {
			continue
		}
		for j, c := range line {
			if c == '\t' {
				return Pos{Line: i + 1, Col: j + 1}, true
			}
			if c != ' ' {
				break
			}
		}
	}
	return Pos{}, false
}

// firstBadChar finds the first byte that is not valid UTF-8 or is a
// control character YAML refuses.
func firstBadChar(src []byte) (Pos, bool) {
	line, col := 1, 1
	for i := 0; i < len(src); {
		c, n := utf8.DecodeRune(src[i:])
		if c == utf8.RuneError && n <= 1 || c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == 0x7f {
			return Pos{Line: line, Col: col}, true
		}
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += n
	}
	return Pos{}, false
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
// appear once, and is handed to its function with its value node. It
// returns the known keys it suggested for unknown ones, so that a missing
// key is not reported beside the typo that explains it.
func (r *reader) fields(n *yaml.Node, what string, handlers map[string]func(key, val *yaml.Node)) (suggested map[string]bool) {
	suggested = map[string]bool{}
	if n.Kind != yaml.MappingNode {
		r.errf(n, "%s: want a mapping, got %s", what, kindName(n))
		return suggested
	}
	known := make([]string, 0, len(handlers))
	for k := range handlers {
		known = append(known, k)
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			r.errf(k, "%s: want a name as key, got %s", what, kindName(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			r.errf(k, "%s: %q is given twice (first at line %d)", what, k.Value, first.Line)
			continue
		}
		seen[k.Value] = k
		h, ok := handlers[k.Value]
		if !ok {
			msg := fmt.Sprintf("%s: unknown key %q", what, k.Value)
			if s := suggest(k.Value, known); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
				suggested[s] = true
			} else {
				msg += " (expected one of: " + strings.Join(sorted(known), ", ") + ")"
			}
			r.errf(k, "%s", msg)
			continue
		}
		if v.Kind == yaml.AliasNode {
			continue // reported by aliases
		}
		h(k, v)
	}
	return suggested
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
	// YAML reads true, True and TRUE alike.
	return rawFlag{Set: true, Value: strings.EqualFold(n.Value, "true"), Pos: r.pos(n)}
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
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || !varName.MatchString(k.Value) {
			r.errf(k, "%s: %s is not a variable name (letters, digits and _, not starting with a digit)", what, kindName(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			r.errf(k, "%s: %q is given twice (first at line %d)", what, k.Value, first.Line)
			continue
		}
		seen[k.Value] = k
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

func (r *reader) sections(n *yaml.Node, what string) []*rawSection {
	if n.Kind != yaml.MappingNode {
		r.errf(n, "%s: want a mapping of section names to lists of steps, got %s", what, kindName(n))
		return nil
	}
	var out []*rawSection
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

// LoadInventory parses an inventory: the cluster's name, its nodes, and the
// optional pooler and manager.
func LoadInventory(file string, src []byte) (*Inventory, error) {
	r := &reader{file: file, reported: map[*yaml.Node]bool{}}
	sum := sha256.Sum256(src)
	inv := &Inventory{File: file, Digest: hex.EncodeToString(sum[:]), Cluster: &cluster.Cluster{Nodes: map[string]*cluster.Node{}}}
	root := r.parse(src, "an inventory (cluster:, nodes:, ...)")
	if root == nil {
		return nil, r.probs.err()
	}
	var hasName, hasNodes bool
	suggested := r.fields(root, "inventory", map[string]func(k, v *yaml.Node){
		"cluster": func(k, v *yaml.Node) {
			hasName = true
			inv.Cluster.Name = r.name(v, "cluster")
		},
		"vars": func(k, v *yaml.Node) { inv.Vars = r.vars(v, "vars") },
		"nodes": func(k, v *yaml.Node) {
			hasNodes = true
			r.nodes(v, inv)
		},
		"pooler":  func(k, v *yaml.Node) { inv.Cluster.Pooler = r.pooler(v) },
		"manager": func(k, v *yaml.Node) { inv.Cluster.Manager = r.manager(v) },
	})
	if !hasName && !suggested["cluster"] {
		r.probs.add(r.pos(root), "inventory: missing key \"cluster\" (the cluster's name)")
	}
	if !hasNodes && !suggested["nodes"] {
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
	nodeLine := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || !namePattern.MatchString(k.Value) {
			r.errf(k, "nodes: %s is not a node name (%s)", kindName(k), nameRule)
			continue
		}
		if _, dup := inv.Cluster.Nodes[k.Value]; dup {
			r.errf(k, "nodes: %q is given twice (first at line %d)", k.Value, nodeLine[k.Value])
			continue
		}
		nodeLine[k.Value] = k.Line
		node := &cluster.Node{Name: k.Value}
		what := fmt.Sprintf("node %q", k.Value)
		r.fields(v, what, map[string]func(k, v *yaml.Node){
			"conninfo": func(_, v *yaml.Node) {
				node.Conninfo = r.str(v, what+": conninfo")
				if node.Conninfo != "" {
					if err := pg.CheckConninfo(node.Conninfo); err != nil {
						r.errf(v, "%s: conninfo: %v", what, err)
					}
				}
			},
			"host":     func(_, v *yaml.Node) { node.Host = r.host(v, what+": host") },
			"data_dir": func(_, v *yaml.Node) { node.DataDir = r.str(v, what+": data_dir") },
			"bin_dir":  func(_, v *yaml.Node) { node.BinDir = r.str(v, what+": bin_dir") },
		})
		inv.Cluster.Nodes[k.Value] = node
		inv.order = append(inv.order, k.Value)
		inv.Cluster.Order = append(inv.Cluster.Order, k.Value)
	}
}

// host reads `local`, or a mapping {transport: local|ssh, address: ...}.
func (r *reader) host(n *yaml.Node, what string) cluster.Host {
	var h cluster.Host
	if n.Kind == yaml.ScalarNode {
		h.Transport = n.Value
	} else {
		r.fields(n, what, map[string]func(k, v *yaml.Node){
			"transport":  func(_, v *yaml.Node) { h.Transport = r.str(v, what+": transport") },
			"address":    func(_, v *yaml.Node) { h.Address = r.str(v, what+": address") },
			"user":       func(_, v *yaml.Node) { h.User = r.str(v, what+": user") },
			"ssh_config": func(_, v *yaml.Node) { h.SSHConfig = r.str(v, what+": ssh_config") },
		})
	}
	switch h.Transport {
	case "local":
		if h.Address != "" {
			r.errf(n, "%s: address is for transport ssh; a local host has none", what)
		}
	case "ssh":
		if h.Address == "" {
			r.errf(n, "%s: transport ssh needs an address, e.g. {transport: ssh, address: \"postgres@db1\"}", what)
		} else if _, _, _, err := transport.ParseSSHAddress(h.Address); err != nil {
			r.errf(n, "%s: address: %v", what, err)
		}
	default:
		r.errf(n, "%s: unknown transport %q (expected \"local\" or \"ssh\")", what, h.Transport)
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
		"admin": func(_, v *yaml.Node) {
			p.Admin = r.str(v, "pooler: admin")
			if p.Admin != "" {
				if err := pg.CheckConninfo(p.Admin); err != nil {
					r.errf(v, "pooler: admin: %v", err)
				}
			}
		},
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
		"username": func(_, v *yaml.Node) { m.Username = r.str(v, "manager: username") },
		"password": func(_, v *yaml.Node) { m.Password = r.str(v, "manager: password") },
		"ca_file":  func(_, v *yaml.Node) { m.CAFile = r.str(v, "manager: ca_file") },
		"insecure": func(_, v *yaml.Node) {
			switch s := strings.TrimSpace(r.str(v, "manager: insecure")); s {
			case "true", "false":
				m.Insecure = s == "true"
			case "":
			default:
				r.errf(v, "manager: insecure: want true or false, got %q", s)
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
