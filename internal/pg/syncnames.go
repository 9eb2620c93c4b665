package pg

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// SyncMethod is how synchronous_standby_names picks its standbys. The zero
// value means synchronous replication is off (an empty setting).
type SyncMethod int

// The methods of synchronous_standby_names.
const (
	SyncOff   SyncMethod = iota // empty setting
	SyncFirst                   // priority: the first n streaming standbys of the list
	SyncAny                     // quorum: any n of the list
)

// String names the method as the setting spells it.
func (m SyncMethod) String() string {
	switch m {
	case SyncFirst:
		return "FIRST"
	case SyncAny:
		return "ANY"
	}
	return "off"
}

// SyncConfig is synchronous_standby_names, parsed: what a primary promises
// about the standbys a commit waits for.
type SyncConfig struct {
	Method SyncMethod
	Num    int      // synchronous standbys a commit waits for
	Names  []string // standby names (application_name) as written, unquoted; "*" matches any standby
}

// plainSyncName is a name that needs no quotes in synchronous_standby_names.
var plainSyncName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*$`)

// quoteSyncName writes a standby name so that the setting reads it back as
// the same name: bare when it is a plain identifier other than FIRST or
// ANY, else double-quoted.
func quoteSyncName(n string) string {
	if n == "*" || (plainSyncName.MatchString(n) && !strings.EqualFold(n, "FIRST") && !strings.EqualFold(n, "ANY")) {
		return n
	}
	return `"` + strings.ReplaceAll(n, `"`, `""`) + `"`
}

// String renders the setting in its long form, e.g. `FIRST 1 (pg2, pg3)`,
// which PostgreSQL reads back as the same setting; "" when off.
func (s SyncConfig) String() string {
	if s.Method == SyncOff {
		return ""
	}
	names := make([]string, len(s.Names))
	for i, n := range s.Names {
		names[i] = quoteSyncName(n)
	}
	return fmt.Sprintf("%s %d (%s)", s.Method, s.Num, strings.Join(names, ", "))
}

// Describe is String for messages: "off" for an empty setting.
func (s SyncConfig) Describe() string {
	if s.Method == SyncOff {
		return "off"
	}
	return s.String()
}

// Matches reports whether a standby with this application_name is one of
// the listed names. PostgreSQL compares names without regard to case, quoted
// or not.
func (s SyncConfig) Matches(app string) bool {
	for _, n := range s.Names {
		if n == "*" || strings.EqualFold(n, app) {
			return true
		}
	}
	return false
}

// Equal reports whether two settings make the same promise: same method,
// number, and names in the same order (compared without regard to case).
func (s SyncConfig) Equal(o SyncConfig) bool {
	if s.Method != o.Method || (s.Method != SyncOff && s.Num != o.Num) || len(s.Names) != len(o.Names) {
		return false
	}
	for i := range s.Names {
		if !strings.EqualFold(s.Names[i], o.Names[i]) {
			return false
		}
	}
	return true
}

// AfterSwitch returns the setting that keeps s's promise once the
// candidate, known to the old primary as any of candidateApps, is the
// primary and the old primary streams from it as oldPrimary: the old
// primary takes the candidate's place in the list (its priority too), a
// name is never listed twice, and every other name, "*" included, stays.
func (s SyncConfig) AfterSwitch(candidateApps []string, oldPrimary string) SyncConfig {
	if s.Method == SyncOff {
		return s
	}
	out := SyncConfig{Method: s.Method, Num: s.Num}
	isCandidate := func(n string) bool {
		for _, a := range candidateApps {
			if strings.EqualFold(a, n) {
				return true
			}
		}
		return false
	}
	for _, n := range s.Names {
		if n != "*" && isCandidate(n) {
			n = oldPrimary
		}
		dup := false
		for _, m := range out.Names {
			if strings.EqualFold(m, n) {
				dup = true
				break
			}
		}
		if !dup {
			out.Names = append(out.Names, n)
		}
	}
	return out
}

// Satisfiers returns the standbys, by application_name, that the setting
// lists (in the order given).
func (s SyncConfig) Satisfiers(standbys []string) []string {
	var out []string
	for _, a := range standbys {
		if s.Matches(a) {
			out = append(out, a)
		}
	}
	return out
}

// Reach is how many standbys pg_stat_replication shows as sync (FIRST) or
// quorum (ANY) when every standby in streaming is: FIRST marks at most Num
// of them sync, ANY marks each listed one quorum.
func (s SyncConfig) Reach(streaming []string) int {
	n := len(s.Satisfiers(streaming))
	if s.Method == SyncFirst && n > s.Num {
		return s.Num
	}
	if s.Method == SyncOff {
		return 0
	}
	return n
}

// syncToken is a lexical token of synchronous_standby_names.
type syncToken struct {
	kind   byte // 'n' name, '#' number, or one of ( ) ,
	text   string
	quoted bool
}

// lexSyncNames splits synchronous_standby_names into tokens: names (bare,
// or double-quoted with "" for a quote), numbers, parentheses and commas.
func lexSyncNames(s string) ([]syncToken, error) {
	var toks []syncToken
	for i := 0; i < len(s); {
		ch := s[i]
		switch {
		case ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r':
			i++
		case ch == '(' || ch == ')' || ch == ',':
			toks = append(toks, syncToken{kind: ch, text: string(ch)})
			i++
		case ch == '"':
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(s) {
					return nil, fmt.Errorf("unterminated quoted name at offset %d", i)
				}
				if s[j] == '"' {
					if j+1 < len(s) && s[j+1] == '"' {
						b.WriteByte('"')
						j += 2
						continue
					}
					break
				}
				b.WriteByte(s[j])
				j++
			}
			if b.Len() == 0 {
				return nil, fmt.Errorf("empty quoted name at offset %d", i)
			}
			toks = append(toks, syncToken{kind: 'n', text: b.String(), quoted: true})
			i = j + 1
		case ch == '*':
			toks = append(toks, syncToken{kind: 'n', text: "*"})
			i++
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n\r(),\"*", rune(s[j])) {
				j++
			}
			word := s[i:j]
			kind := byte('n')
			if strings.Trim(word, "0123456789") == "" {
				kind = '#'
			}
			toks = append(toks, syncToken{kind: kind, text: word})
			i = j
		}
	}
	return toks, nil
}

// ParseSyncStandbyNames parses synchronous_standby_names as PostgreSQL
// does: `FIRST n (a, b)`, `ANY n (a, b)`, `n (a, b)` (FIRST), or a plain
// list `a, b` (FIRST 1); names may be double-quoted, and `*` matches any
// standby. An empty setting parses to Method SyncOff. It is the one reader
// of the setting: checks and steps that judge or derive it share it.
func ParseSyncStandbyNames(s string) (SyncConfig, error) {
	toks, err := lexSyncNames(s)
	if err != nil {
		return SyncConfig{}, err
	}
	if len(toks) == 0 {
		return SyncConfig{Method: SyncOff}, nil
	}
	cfg := SyncConfig{Method: SyncFirst, Num: 1}
	pos := 0
	isKeyword := func(t syncToken, kw string) bool { return t.kind == 'n' && !t.quoted && strings.EqualFold(t.text, kw) }
	hasNumList := func(at int) bool { return at+1 < len(toks) && toks[at].kind == '#' && toks[at+1].kind == '(' }
	parenthesized := false
	switch {
	case (isKeyword(toks[0], "FIRST") || isKeyword(toks[0], "ANY")) && hasNumList(1):
		if isKeyword(toks[0], "ANY") {
			cfg.Method = SyncAny
		}
		pos, parenthesized = 1, true
	case hasNumList(0):
		parenthesized = true
	case isKeyword(toks[0], "FIRST") || isKeyword(toks[0], "ANY"):
		return SyncConfig{}, fmt.Errorf("%s must be followed by a number and a parenthesized list of names", strings.ToUpper(toks[0].text))
	}
	if parenthesized {
		n, err := strconv.Atoi(toks[pos].text)
		if err != nil {
			return SyncConfig{}, fmt.Errorf("number of synchronous standbys %q: %w", toks[pos].text, err)
		}
		if n <= 0 {
			return SyncConfig{}, fmt.Errorf("number of synchronous standbys (%d) must be greater than zero", n)
		}
		cfg.Num = n
		pos += 2 // the number and "("
	}
	for {
		if pos >= len(toks) {
			return SyncConfig{}, errors.New("a standby name is missing at the end")
		}
		t := toks[pos]
		if t.kind != 'n' && t.kind != '#' {
			return SyncConfig{}, fmt.Errorf("want a standby name, got %q", t.text)
		}
		cfg.Names = append(cfg.Names, t.text)
		pos++
		if pos < len(toks) && toks[pos].kind == ',' {
			pos++
			continue
		}
		break
	}
	if parenthesized {
		if pos >= len(toks) || toks[pos].kind != ')' {
			return SyncConfig{}, errors.New(`the list of names lacks its closing ")"`)
		}
		pos++
	}
	if pos < len(toks) {
		return SyncConfig{}, fmt.Errorf("unexpected %q after the list of names", toks[pos].text)
	}
	return cfg, nil
}
