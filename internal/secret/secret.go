// Package secret keeps passwords out of everything switchover writes:
// output, logs, journals and reports. A Redactor masks the password fields of
// libpq connection strings and URLs, and any exact secret it was told about.
package secret

import (
	"regexp"
	"sort"
	"strings"
)

// Mask replaces a secret.
const Mask = "********"

var patterns = []*regexp.Regexp{
	// key=value connection strings: password=x, password='x y', password = "x"
	regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s'"]+)`),
	// URLs: scheme://user:secret@host
	regexp.MustCompile(`(?i)([a-z][a-z0-9+.-]*://[^:/@\s]*:)([^@\s]+)(@)`),
	// environment assignments: PGPASSWORD=x
	regexp.MustCompile(`(\bPGPASSWORD\s*=\s*)(\S+)`),
}

// Redactor masks secrets in text.
type Redactor struct {
	known []string // longest first
}

// Add tells the redactor about a secret to mask wherever it appears.
// Values shorter than four characters are ignored: masking them would
// garble ordinary text and they are not worth hiding.
func (r *Redactor) Add(s string) {
	if len(s) < 4 {
		return
	}
	for _, k := range r.known {
		if k == s {
			return
		}
	}
	r.known = append(r.known, s)
	sort.Slice(r.known, func(i, j int) bool { return len(r.known[i]) > len(r.known[j]) })
}

// AddConninfo learns the password a connection string carries, if any.
func (r *Redactor) AddConninfo(conninfo string) {
	for _, m := range patterns[0].FindAllStringSubmatch(conninfo, -1) {
		r.Add(strings.Trim(m[2], `'"`))
	}
	for _, m := range patterns[1].FindAllStringSubmatch(conninfo, -1) {
		r.Add(m[2])
	}
}

// Redact returns s with every secret masked. A nil Redactor still masks
// the password fields it recognises.
func (r *Redactor) Redact(s string) string {
	if s == "" {
		return s
	}
	if r != nil {
		for _, k := range r.known {
			s = strings.ReplaceAll(s, k, Mask)
		}
	}
	s = patterns[0].ReplaceAllString(s, "${1}"+Mask)
	s = patterns[1].ReplaceAllString(s, "${1}"+Mask+"${3}")
	return patterns[2].ReplaceAllString(s, "${1}"+Mask)
}

// LooksSecret reports whether a variable's name says it holds a secret.
func LooksSecret(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"pass", "secret", "token", "credential", "apikey", "api_key"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// Redact masks in s the password conninfo carries, and every password
// field it recognises: for messages about a connection string.
func Redact(conninfo, s string) string {
	var r Redactor
	r.AddConninfo(conninfo)
	return r.Redact(s)
}
