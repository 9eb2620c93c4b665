// Package docs renders the parts of the documentation that are generated
// from the code: the check and step reference (docs/reference), from the
// same registered definitions the runbook loader decodes parameters with
// and `switchover checks` and `switchover steps` print. Its tests compare
// the pages with what the code would render now, and check that every
// link between the pages resolves, so the documentation cannot drift from
// the code without a test saying so.
package docs

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/kinds"
	"github.com/switchover/switchover/internal/params"
)

// RegenerateCommand is what a stale reference page tells its reader to run.
const RegenerateCommand = "make docs (or: go test ./internal/docs -run TestReference -update)"

// The pages the reference is written to, relative to the repository's root.
const (
	ChecksPage = "docs/reference/checks.md"
	StepsPage  = "docs/reference/steps.md"
)

// generatedNote heads every generated page, for whoever opens it to edit it.
const generatedNote = "<!-- Generated from the registered definitions by `make docs`; do not edit: change the definition's Doc or Params and run it again. -->"

// kindEntry is one kind as the reference shows it, a check or a step.
type kindEntry struct {
	kind        string
	doc         string
	destructive bool
	manager     cluster.ManagerKind
	params      []params.Spec
}

// CheckReference renders the check reference: every check kind with its
// doc, the cluster manager it needs, and its parameters, after the
// parameters every check takes (engine).
func CheckReference(defs []kinds.CheckDefinition, engine []params.Spec) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Check reference\n\n%s\n\n", generatedNote)
	b.WriteString("Every kind of check a step's `requires` (preconditions) and `ensures` (postconditions) can\n" +
		"name, with its parameters, as `switchover checks` prints them. A check reads and changes\n" +
		"nothing: the dry run evaluates every precondition for real. How a runbook names a check:\n" +
		"[Runbooks](../runbooks.md); the actions: [step reference](steps.md).\n\n")
	b.WriteString("Every check also takes these parameters, which the engine acts on:\n\n")
	paramTable(&b, engine)
	entries := make([]kindEntry, len(defs))
	for i, d := range defs {
		entries[i] = kindEntry{kind: d.Kind, doc: d.Doc, manager: d.Manager, params: d.Params}
	}
	kindSections(&b, entries)
	return b.Bytes()
}

// StepReference renders the step reference: every action kind with its
// doc, whether it always asks for approval, the cluster manager it needs,
// and its parameters.
func StepReference(defs []kinds.StepDefinition) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Step reference\n\n%s\n\n", generatedNote)
	b.WriteString("Every kind of action a step can take, with its parameters, as `switchover steps` prints them.\n" +
		"`plan` and the approval prompt show each action's exact effect (the SQL or the command line,\n" +
		"and the node) before it runs. How a runbook names an action: [Runbooks](../runbooks.md); the\n" +
		"checks: [check reference](checks.md).\n")
	entries := make([]kindEntry, len(defs))
	for i, d := range defs {
		entries[i] = kindEntry{kind: d.Kind, doc: d.Doc, destructive: d.Destructive, manager: d.Manager, params: d.Params}
	}
	kindSections(&b, entries)
	return b.Bytes()
}

// kindSections writes an index of the kinds, then a section for each.
func kindSections(b *bytes.Buffer, entries []kindEntry) {
	b.WriteString("\n## Kinds\n\n")
	for _, e := range entries {
		fmt.Fprintf(b, "- [`%s`](#%s): %s\n", e.kind, Anchor("`"+e.kind+"`"), text(e.doc))
	}
	for _, e := range entries {
		fmt.Fprintf(b, "\n## `%s`\n\n%s\n", e.kind, text(e.doc))
		var notes []string
		if e.destructive {
			notes = append(notes, "Always destructive: the operator approves it, whatever the runbook says.")
		}
		if e.manager != "" {
			notes = append(notes, fmt.Sprintf("Needs an inventory whose cluster manager is `%s` (`manager: {kind: %s}`).", e.manager, e.manager))
		}
		if len(notes) > 0 {
			fmt.Fprintf(b, "\n%s\n", strings.Join(notes, " "))
		}
		b.WriteString("\n")
		if len(e.params) == 0 {
			b.WriteString("No parameters.\n")
			continue
		}
		paramTable(b, e.params)
	}
}

// paramTable writes one row per parameter: name, type (and allowed values),
// required, default, doc.
func paramTable(b *bytes.Buffer, specs []params.Spec) {
	b.WriteString("| parameter | type | required | default | what |\n|---|---|---|---|---|\n")
	for _, p := range specs {
		typ := p.Type.String()
		if len(p.Enum) > 0 {
			vals := make([]string, len(p.Enum))
			for i, v := range p.Enum {
				vals[i] = "`" + v + "`"
			}
			typ += ", one of " + strings.Join(vals, ", ")
		}
		required := "no"
		if p.Required {
			required = "yes"
		}
		def := ""
		if p.Default != "" {
			def = "`" + p.Default + "`"
		}
		fmt.Fprintf(b, "| `%s` | %s | %s | %s | %s |\n", p.Name, cell(typ), required, cell(def), cell(text(p.Doc)))
	}
}

// text is a doc as Markdown shows it: on one line, and with a < that
// would open an HTML tag (fact <node>.restarted_at) written as an entity.
func text(s string) string {
	return strings.ReplaceAll(strings.Join(strings.Fields(s), " "), "<", "&lt;")
}

// cell escapes what would end a table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// Anchor is the fragment GitHub gives a heading: lower case, punctuation
// dropped (but - and _), each space a hyphen.
func Anchor(heading string) string {
	s := strings.ToLower(strings.TrimSpace(heading))
	s = anchorDrop.ReplaceAllString(s, "")
	return strings.ReplaceAll(s, " ", "-")
}

// anchorDrop is what a heading's anchor leaves out: anything not a letter,
// a digit, a mark, a space, a hyphen or an underscore.
var anchorDrop = regexp.MustCompile(`[^\p{L}\p{N}\p{M} _-]`)
