package main

import (
	"strings"
	"unicode"
)

// Lines at a terminal are fitted to its width, never by cutting a figure:
// "longest write gap 273.2 ms" cut to "longest write gap 27…" reads as a
// different number. Descriptions (clauses without a digit) are shortened
// first; a line of figures that still does not fit is wrapped.

// fitLine fits s into width columns: the longest clause without a digit is
// shortened (its last words dropped, "…" marking the cut) until the line
// fits; if it still does not, the line is wrapped at spaces, continuation
// lines indented by indent.
func fitLine(s string, width int, indent string) string {
	if width <= 0 || runeLen(s) <= width {
		return s
	}
	clauses := splitClauses(s)
	for total(clauses) > width {
		i := longestCuttable(clauses)
		if i < 0 {
			break
		}
		clauses[i] = shorten(clauses[i])
	}
	out := strings.Join(clauses, "")
	if runeLen(out) <= width {
		return out
	}
	return strings.Join(wrapWords(out, width, indent), "\n")
}

// cutEnd cuts s to width columns at its end, with "…": for text that is
// all description, such as a spinner line's check.
func cutEnd(s string, width int) string {
	r := []rune(s)
	if width <= 0 || len(r) <= width {
		return s
	}
	if width == 1 {
		return "…"
	}
	return string(r[:width-1]) + "…"
}

// splitClauses splits s after ", ", "; " and ": ", keeping the separators
// with the clause before them, so that joining the parts gives s back.
func splitClauses(s string) []string {
	var out []string
	start := 0
	for i := 0; i+1 < len(s); i++ {
		if (s[i] == ',' || s[i] == ';' || s[i] == ':') && s[i+1] == ' ' {
			out = append(out, s[start:i+2])
			start = i + 2
			i++
		}
	}
	return append(out, s[start:])
}

func hasDigit(s string) bool {
	return strings.IndexFunc(s, unicode.IsDigit) >= 0
}

// longestCuttable is the index of the longest clause that holds no figure
// and has more than one word left to drop, or -1.
func longestCuttable(clauses []string) int {
	best, bestLen := -1, 0
	for i, c := range clauses {
		if hasDigit(c) || len(strings.Fields(strings.TrimSuffix(c, "…"))) < 2 {
			continue
		}
		if n := runeLen(c); n > bestLen {
			best, bestLen = i, n
		}
	}
	return best
}

// shorten drops the last word of a clause, keeping its separator.
func shorten(c string) string {
	sep := ""
	body := c
	for _, s := range []string{", ", "; ", ": "} {
		if strings.HasSuffix(c, s) {
			sep, body = s, strings.TrimSuffix(c, s)
			break
		}
	}
	body = strings.TrimSuffix(body, "…")
	lead := body[:len(body)-len(strings.TrimLeft(body, " "))]
	words := strings.Fields(body)
	if len(words) < 2 {
		return c
	}
	return lead + strings.Join(words[:len(words)-1], " ") + "…" + sep
}

func total(clauses []string) int {
	n := 0
	for _, c := range clauses {
		n += runeLen(c)
	}
	return n
}

func runeLen(s string) int { return len([]rune(s)) }

// wrapWords wraps s at spaces into lines of at most width columns (a word
// longer than that stands on a line of its own, whole); lines after the
// first start with indent.
func wrapWords(s string, width int, indent string) []string {
	lead := s[:len(s)-len(strings.TrimLeft(s, " "))]
	words := strings.Fields(s)
	var lines []string
	cur := lead
	curHasWord := false
	for _, w := range words {
		switch {
		case !curHasWord:
			cur += w
		case runeLen(cur)+1+runeLen(w) <= width:
			cur += " " + w
		default:
			lines = append(lines, cur)
			cur = indent + w
		}
		curHasWord = true
	}
	return append(lines, cur)
}
