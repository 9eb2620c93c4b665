package spec

// The strict YAML reader both schemas are read with: one document, a
// mapping at the top, no aliases or merge keys, every key known and given
// once, and every problem kept with its file:line:col.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/switchover/switchover/internal/cluster"
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

// rawFlag is a boolean key of a step.
type rawFlag struct {
	Set   bool
	Value bool
	Pos   Pos
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

// namePattern is what the name of a runbook, a step, a section, a cluster,
// a node or a pooler must match (cluster.NamePattern).
var namePattern = cluster.NamePattern

// nameRule says what namePattern allows, for messages.
const nameRule = cluster.NameRule

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

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
