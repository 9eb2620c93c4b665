package main

import (
	"strings"
)

// Lines at a terminal are fitted to its width without ever cutting a
// word, so no figure is cut in half ("longest write gap 273.2 ms" cut to
// "longest write gap 27…" reads as a different number). A line's label
// column stays where it is: the text after it is wrapped, continuation
// lines indented under the text. Results, observations and figures are
// wrapped whole; what only repeats the plan (a check's description, an
// action's command: both whole in `plan` and in the journal) is kept to a
// few lines, the rest dropped at a word boundary and marked "…".

// Lines a check's description and an action's command may take at a
// terminal.
const (
	describeLines = 3
	commandLines  = 2
)

// fitText fits text into lines of at most room columns: wrapped at spaces
// (a word longer than room stands whole on a line of its own); with
// maxLines > 0, a text that needs more lines ends on the last one with
// " …" after its last whole word. Spacing inside a line is kept.
func fitText(text string, room, maxLines int) []string {
	r := []rune(text)
	if room < 2 {
		room = 2
	}
	var out []string
	for len(r) > room {
		if maxLines > 0 && len(out) == maxLines-1 {
			cut := lastSpace(r[:room-1])
			if cut <= 0 {
				cut = room - 2 // one word longer than the line: only here is one cut
			}
			return append(out, strings.TrimRight(string(r[:cut]), " ")+" …")
		}
		cut := lastSpace(r[:room+1])
		if cut <= 0 {
			cut = nextSpace(r, room)
		}
		out = append(out, strings.TrimRight(string(r[:cut]), " "))
		r = []rune(strings.TrimLeft(string(r[cut:]), " "))
	}
	if len(r) > 0 || len(out) == 0 {
		out = append(out, string(r))
	}
	return out
}

// lastSpace is the index of the last space in r, or -1.
func lastSpace(r []rune) int {
	for i := len(r) - 1; i >= 0; i-- {
		if r[i] == ' ' {
			return i
		}
	}
	return -1
}

// nextSpace is the index of the first space in r at or after from, or
// len(r).
func nextSpace(r []rune, from int) int {
	for i := from; i < len(r); i++ {
		if r[i] == ' ' {
			return i
		}
	}
	return len(r)
}

// fitLabelled fits a line made of a prefix (the indent, a label, its
// padding) and a text into width columns: the text wraps under itself.
// The prefix's width is what shows, colour codes left out.
func fitLabelled(prefix, text string, width, maxLines int) string {
	col := visibleLen(prefix)
	lines := fitText(text, width-col, maxLines)
	indent := strings.Repeat(" ", col)
	for i := range lines {
		if i == 0 {
			lines[i] = prefix + lines[i]
		} else {
			lines[i] = indent + lines[i]
		}
	}
	return strings.Join(lines, "\n")
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

func runeLen(s string) int { return len([]rune(s)) }

// visibleLen is how many columns s takes at a terminal: its runes less
// the ANSI colour sequences (ESC [ ... m).
func visibleLen(s string) int {
	n, esc := 0, false
	for _, c := range s {
		switch {
		case esc:
			esc = c != 'm'
		case c == '\033':
			esc = true
		default:
			n++
		}
	}
	return n
}

// padLabel pads a label, perhaps coloured, to n visible columns.
func padLabel(label string, n int) string {
	if k := visibleLen(label); k < n {
		return label + strings.Repeat(" ", n-k)
	}
	return label
}
