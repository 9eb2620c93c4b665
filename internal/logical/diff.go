package logical

import (
	"fmt"
	"slices"
	"strings"
)

// Difference is how two schemas differ, object by object, with an
// excerpt of the first differing lines.
type Difference struct {
	OnlyFrom []string // objects the first schema has and the second lacks
	OnlyTo   []string // objects only the second schema has
	Changed  []string // objects both have, defined differently
	// Excerpt shows the first differing lines in the manner of a unified
	// diff, with a few lines of context, bounded.
	Excerpt string
}

// Empty reports whether the schemas are the same.
func (d Difference) Empty() bool {
	return len(d.OnlyFrom) == 0 && len(d.OnlyTo) == 0 && len(d.Changed) == 0
}

// Summary names the differing objects on one line, fromName and toName
// naming the two sides.
func (d Difference) Summary(fromName, toName string) string {
	var parts []string
	if len(d.OnlyFrom) > 0 {
		parts = append(parts, fmt.Sprintf("missing on %s: %s", toName, List(d.OnlyFrom)))
	}
	if len(d.OnlyTo) > 0 {
		parts = append(parts, fmt.Sprintf("only on %s: %s", toName, List(d.OnlyTo)))
	}
	if len(d.Changed) > 0 {
		parts = append(parts, fmt.Sprintf("defined differently on %s and %s: %s", fromName, toName, List(d.Changed)))
	}
	return strings.Join(parts, "; ")
}

// excerptContext is how many equal lines the excerpt shows before the
// first difference; excerptLines bounds the lines it shows of each side.
const (
	excerptContext = 3
	excerptLines   = 12
)

// Compare compares two normalized schemas, from and to naming the sides
// in the excerpt's header.
func Compare(a, b Normalized, fromName, toName string) Difference {
	var d Difference
	for _, k := range a.Keys {
		bl, ok := b.Lines[k]
		switch {
		case !ok:
			d.OnlyFrom = append(d.OnlyFrom, k)
		case !slices.Equal(a.Lines[k], bl):
			d.Changed = append(d.Changed, k)
		}
	}
	for _, k := range b.Keys {
		if _, ok := a.Lines[k]; !ok {
			d.OnlyTo = append(d.OnlyTo, k)
		}
	}
	if !d.Empty() {
		d.Excerpt = excerpt(a, b, fromName, toName)
	}
	return d
}

// excerpt shows where the two schemas' lines first part: the equal lines
// before, then the differing lines of each side up to where they meet
// again, each side bounded.
func excerpt(a, b Normalized, fromName, toName string) string {
	al, aown := a.all()
	bl, bown := b.all()
	p := 0
	for p < len(al) && p < len(bl) && al[p] == bl[p] {
		p++
	}
	s := 0
	for s < len(al)-p && s < len(bl)-p && al[len(al)-1-s] == bl[len(bl)-1-s] {
		s++
	}
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", fromName, toName)
	owner := ""
	switch {
	case p < len(al):
		owner = aown[p]
	case p < len(bl):
		owner = bown[p]
	}
	fmt.Fprintf(&out, "@@ line %d, %s @@\n", p+1, owner)
	for i := max(0, p-excerptContext); i < p; i++ {
		out.WriteString("  " + al[i] + "\n")
	}
	side := func(lines []string, from, to int, mark string) {
		for i := from; i < to && i < from+excerptLines; i++ {
			out.WriteString(mark + lines[i] + "\n")
		}
		if n := to - from - excerptLines; n > 0 {
			fmt.Fprintf(&out, "%s[%d more lines]\n", mark, n)
		}
	}
	side(al, p, len(al)-s, "- ")
	side(bl, p, len(bl)-s, "+ ")
	return strings.TrimRight(out.String(), "\n")
}
