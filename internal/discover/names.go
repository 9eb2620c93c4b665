package discover

// Names: what the cluster calls each node, or the best guess at it.

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/pg"
)

// genericApps are application names a WAL receiver streams under when
// nobody named it: no node's name.
var genericApps = []string{"walreceiver", ""}

// nameMembers names every member: the manager's name, else the name a
// standby streams under (application_name, which synchronous_standby_names
// and the rejoin's primary_conninfo use), else a guess.
func (w *walker) nameMembers() {
	taken := map[string]bool{}
	// Names the cluster gives first, so a guess never takes one.
	for _, m := range w.members {
		if m.managed != "" {
			m.name = Read(m.managed)
		} else if m.sender != nil && usable(m.sender.App, m.f) {
			m.name = fit(m.sender.App, fmt.Sprintf("its application_name %q", m.sender.App))
		}
		if m.name.Text != "" && taken[m.name.Text] {
			m.name = Value{}
		}
		if m.name.Text != "" {
			taken[m.name.Text] = true
		}
	}
	for _, m := range w.members {
		if m.name.Text != "" {
			continue
		}
		m.name = w.guessName(m, taken)
		for base, i := m.name.Text, 2; taken[m.name.Text]; i++ {
			m.name = Guess(fmt.Sprintf("%s-%d", base, i), m.name.Guessed+", and that name was taken")
		}
		taken[m.name.Text] = true
	}
}

// usable reports whether app, the name a standby streams under, is a
// node's name rather than libpq's or PostgreSQL's default.
func usable(app string, f *facts) bool {
	return !slices.Contains(genericApps, app) && app != f.ClusterName
}

// fit is name as the inventory takes it: as it is when it is a valid name,
// else made into one (lower case, other characters as '-') and marked
// guessed with what it was.
func fit(name, what string) Value {
	if cluster.NamePattern.MatchString(name) {
		return Read(name)
	}
	if s := sanitize(name); s != "" {
		return Guess(s, what+" made a valid name")
	}
	return Value{}
}

var invalidRun = regexp.MustCompile(`[^a-z0-9_.-]+`)

// sanitize makes s a valid name, or "".
func sanitize(s string) string {
	s = invalidRun.ReplaceAllString(strings.ToLower(s), "-")
	s = strings.TrimLeft(s, "-_.")
	s = strings.TrimRight(s, "-")
	if !cluster.NamePattern.MatchString(s) {
		return ""
	}
	return s
}

// guessName names a member nothing in the cluster names.
func (w *walker) guessName(m *member, taken map[string]bool) Value {
	if m.f.State.Role == pg.RolePrimary {
		if m.f.OwnApp != "" && !taken[m.f.OwnApp] {
			if v := fit(m.f.OwnApp, ""); v.Text != "" {
				return Guess(v.Text, fmt.Sprintf("the application_name its own primary_conninfo still gives (%q), from when it was a standby", m.f.OwnApp))
			}
		}
		if slot := w.unusedSlot(m); slot != "" && !taken[slot] {
			return Guess(slot, "the one physical replication slot on it that no standby streams through, kept for it")
		}
	} else {
		for _, slot := range []string{m.f.State.SlotName, senderSlot(m)} {
			if v := fit(slot, ""); v.Text != "" && !taken[v.Text] {
				return Guess(v.Text, "the replication slot it streams through")
			}
		}
	}
	if ip := net.ParseIP(m.host); ip == nil && !strings.HasPrefix(m.host, "/") {
		if label := sanitize(strings.SplitN(m.host, ".", 2)[0]); label != "" && label != "localhost" && !taken[label] {
			return Guess(label, "its host name")
		}
	}
	if name := w.afterSiblings(taken); name != "" {
		return Guess(name, "the name its siblings' names leave")
	}
	if m.f.State.Role == pg.RolePrimary {
		return Guess("primary", "nothing in the cluster names it")
	}
	return Guess("standby", "nothing in the cluster names it")
}

func senderSlot(m *member) string {
	if m.sender == nil {
		return ""
	}
	return m.sender.SlotName
}

// unusedSlot is the one inactive physical slot on the primary m that no
// member streams through, or "".
func (w *walker) unusedSlot(m *member) string {
	used := map[string]bool{}
	for _, o := range w.members {
		used[o.f.State.SlotName] = true
		if o.sender != nil {
			used[o.sender.SlotName] = true
		}
	}
	var out []string
	for _, s := range m.f.Slots {
		if s.Type == "physical" && !s.Active && !used[s.Name] && cluster.NamePattern.MatchString(s.Name) {
			out = append(out, s.Name)
		}
	}
	if len(out) != 1 {
		return ""
	}
	return out[0]
}

var numbered = regexp.MustCompile(`^([a-z][a-z0-9_.-]*?)(\d+)$`)

// afterSiblings is the first free name of the series the named members
// share (pg2 and pg3 leave pg1), or "" when they share none.
func (w *walker) afterSiblings(taken map[string]bool) string {
	prefix := ""
	count := 0
	for _, o := range w.members {
		if o.name.Text == "" || o.name.Guessed != "" {
			continue
		}
		sub := numbered.FindStringSubmatch(o.name.Text)
		if sub == nil || (prefix != "" && sub[1] != prefix) {
			return ""
		}
		prefix = sub[1]
		count++
	}
	if count == 0 {
		return ""
	}
	for i := 1; i <= count+1; i++ {
		if name := prefix + strconv.Itoa(i); !taken[name] {
			return name
		}
	}
	return ""
}
