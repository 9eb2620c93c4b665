// Package oneline puts a command's output or an error message on one line,
// the way check details, step errors and journal lines show it. It is its
// own package so that checks, steps and the plumbing under them can all
// use the same rule without importing each other.
package oneline

import "strings"

// Of puts s on one line: its non-blank lines joined with "; ", each line's
// runs of blanks made one space. Keeping the line breaks as "; " keeps a
// multi-line message readable where joining with spaces would run its
// sentences together.
func Of(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.Join(strings.Fields(l), " "); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "; ")
}
