package logical

import (
	"fmt"
	"regexp"
	"strings"
)

// A schema-only dump in pg_dump's plain format is a preamble (SET lines)
// and one block per object, each opened by a comment header:
//
//	--
//	-- Name: t t_pkey; Type: CONSTRAINT; Schema: public; Owner: -
//	--
//
// The blocks are what the comparison names and what the copy leaves out
// (switchover's own objects).

// Object is one object of a dump: its header and its lines.
type Object struct {
	Type   string // TABLE, CONSTRAINT, EVENT TRIGGER, ...
	Schema string // "-" for an object outside schemas
	Name   string // as pg_dump names it: "t t_pkey" for a constraint
	Lines  []string
}

// Key names the object for messages: "CONSTRAINT public.t t_pkey".
func (o Object) Key() string {
	if o.Schema == "" || o.Schema == "-" {
		return o.Type + " " + o.Name
	}
	return o.Type + " " + o.Schema + "." + o.Name
}

// Dump is a schema-only dump cut into objects.
type Dump struct {
	Preamble []string
	Objects  []Object
}

// header matches an object's header line.
var header = regexp.MustCompile(`^-- (?:Data for )?Name: (.*); Type: (.*); Schema: (.*); Owner: (.*)$`)

// ParseDump cuts a plain-format dump into its objects. The comment lines
// "--" that open a header belong to the object the header names.
func ParseDump(text string) Dump {
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	var d Dump
	cur := &d.Preamble
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if m := header.FindStringSubmatch(l); m != nil {
			// The "--" just above the header opens the block.
			if n := len(*cur); n > 0 && (*cur)[n-1] == "--" {
				*cur = (*cur)[:n-1]
			}
			d.Objects = append(d.Objects, Object{Name: m[1], Type: m[2], Schema: m[3], Lines: []string{"--", l}})
			cur = &d.Objects[len(d.Objects)-1].Lines
			continue
		}
		*cur = append(*cur, l)
	}
	return d
}

// Ours reports whether o is switchover's own: in Schema, the schema
// itself, or the DDL guard's event trigger.
func Ours(o Object) bool {
	switch {
	case o.Schema == Schema:
		return true
	case o.Type == "SCHEMA" && o.Name == Schema:
		return true
	case o.Type == "EVENT TRIGGER" && (o.Name == GuardTrigger || o.Name == GuardEndTrigger):
		return true
	case o.Type == "COMMENT" && (o.Name == "SCHEMA "+Schema || o.Name == "EVENT TRIGGER "+GuardTrigger || o.Name == "EVENT TRIGGER "+GuardEndTrigger):
		return true
	}
	return false
}

// metaCommand matches a line psql reads as a meta-command (pg_dump's
// \restrict and \unrestrict, which carry a key random in every dump).
var metaCommand = regexp.MustCompile(`^\\[a-z]+(\s|$)`)

// Restorable is the dump without switchover's objects and without psql's
// meta-commands: SQL that a server runs as one script.
func (d Dump) Restorable() string {
	var b strings.Builder
	write := func(lines []string) {
		for _, l := range lines {
			if metaCommand.MatchString(l) {
				continue
			}
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	write(d.Preamble)
	for _, o := range d.Objects {
		if !Ours(o) {
			write(o.Lines)
		}
	}
	return b.String()
}

// UserObjects reports whether the dump creates anything beyond what
// every new database has (the public schema, plpgsql) and switchover's
// own.
func (d Dump) UserObjects() []string {
	var out []string
	for _, o := range d.Objects {
		if Ours(o) || normalizedEmpty(o) {
			continue
		}
		switch o.Key() {
		case "SCHEMA public", "COMMENT SCHEMA public", "EXTENSION plpgsql", "COMMENT EXTENSION plpgsql":
			continue
		}
		out = append(out, o.Key())
	}
	return out
}

// normalizedLine says whether a line of a dump counts in a comparison:
// not a comment, not blank, not a setting of the dump's session, not a
// meta-command.
func normalizedLine(l string) bool {
	t := strings.TrimSpace(l)
	switch {
	case t == "", strings.HasPrefix(t, "--"), metaCommand.MatchString(t):
		return false
	case strings.HasPrefix(t, "SET ") || strings.HasPrefix(t, "SELECT pg_catalog.set_config("):
		return false
	}
	return true
}

func normalizedEmpty(o Object) bool {
	for _, l := range o.Lines {
		if normalizedLine(l) {
			return false
		}
	}
	return true
}

// Normalized is a dump as the comparison sees it: for each object (but
// switchover's), its key and its lines without comments, blank lines and
// session settings, trailing blanks trimmed; the preamble is left out
// (pg_dump's version header, its SET lines).
type Normalized struct {
	Keys  []string
	Lines map[string][]string
}

// Normalize turns a dump into what the comparison compares. Two objects
// that share a key (overloaded functions do not: their arguments are in
// the name) are told apart by a #2, #3.
func Normalize(d Dump) Normalized {
	n := Normalized{Lines: map[string][]string{}}
	for _, o := range d.Objects {
		if Ours(o) {
			continue
		}
		key := o.Key()
		for i := 2; ; i++ {
			if _, dup := n.Lines[key]; !dup {
				break
			}
			key = fmt.Sprintf("%s #%d", o.Key(), i)
		}
		var lines []string
		for _, l := range o.Lines {
			if normalizedLine(l) {
				lines = append(lines, strings.TrimRight(l, " \t"))
			}
		}
		if len(lines) == 0 {
			continue
		}
		n.Keys = append(n.Keys, key)
		n.Lines[key] = lines
	}
	return n
}

// all is every line, each object's after the other, with the object it
// belongs to.
func (n Normalized) all() (lines, owners []string) {
	for _, k := range n.Keys {
		for _, l := range n.Lines[k] {
			lines = append(lines, l)
			owners = append(owners, k)
		}
	}
	return lines, owners
}
