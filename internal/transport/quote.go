package transport

import "strings"

// shellSafe are the bytes a POSIX shell reads as themselves in a word, in
// any position: a word made only of them needs no quotes.
const shellSafe = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:=@%+,-"

// ShellQuote quotes s as one word for a POSIX shell, the one kind of
// command line every Executor runs. A word made only of safe characters
// (letters, digits and _./:=@%+,-) is left as it is, so that plans and
// approval prompts stay readable; anything else, and the empty word, goes in
// single quotes, each single quote inside written as '\” (close the
// quoted part, an escaped quote, open a new one). A word the shell would
// take as an assignment in command position (NAME=...) is quoted too, so the
// result means s wherever it is put.
func ShellQuote(s string) string {
	if s != "" && strings.Trim(s, shellSafe) == "" && !isAssignment(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// isAssignment reports whether s starts with NAME=, which a shell reads as
// a variable assignment rather than a word when it comes first.
func isAssignment(s string) bool {
	name, _, ok := strings.Cut(s, "=")
	if !ok || name == "" || name[0] >= '0' && name[0] <= '9' {
		return false
	}
	return strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == ""
}
