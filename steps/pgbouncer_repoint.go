package steps

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/conninfo"
	"github.com/switchover/switchover/internal/pgbouncer"
	"github.com/switchover/switchover/internal/secret"
	"github.com/switchover/switchover/internal/transport"
)

// ReleasesClients implements ClientReleaser: a repoint is what lets held
// clients reach the new primary.
func (s *PgBouncerRepoint) ReleasesClients() bool { return true }

// PgBouncerRepoint is a step that sends every PgBouncer's clients to another
// node. In each pooler's configuration it finds the server the client
// database (the inventory's database) points at, the primary, and rewrites
// host= and port= of every [databases] entry that points there, keeping
// everything else in the file; entries pointing elsewhere (a read-only
// entry on a standby) are left alone and named in the output. It reloads
// each PgBouncer and checks with SHOW DATABASES that the entries took. The
// poolers are repointed at once.
type PgBouncerRepoint struct {
	To string
}

var _ Step = (*PgBouncerRepoint)(nil)

// maxPoolerConfig bounds the configuration file the step rewrites: it is
// read and written back through shell commands (the text written goes on
// the command's standard input, within transport.MaxInput).
const maxPoolerConfig = 60000

// defaultServerPort is the port PgBouncer connects to when an entry names
// none.
const defaultServerPort = "5432"

// hostPort is a server address as PgBouncer's SHOW DATABASES shows it.
type hostPort struct{ Host, Port string }

func (h hostPort) String() string { return h.Host + ":" + h.Port }

// address is the server the node's conninfo resolves to.
func (s *PgBouncerRepoint) address(t *cluster.Target) (hostPort, error) {
	r, err := nodeConninfo(t, s.To)
	if err != nil {
		return hostPort{}, err
	}
	return hostPort{Host: r.Host, Port: r.PortString()}, nil
}

// Describe implements Step.
func (s *PgBouncerRepoint) Describe(t *cluster.Target) Effect {
	to, err := s.address(t)
	host, port := to.Host, to.Port
	if err != nil {
		host, port = fmt.Sprintf("<host of %s>", s.To), fmt.Sprintf("<port of %s>", s.To)
	}
	var configs []string
	db := "<database>"
	if ps, err := poolers(t); err == nil {
		db = poolerDatabase(ps[0])
		for _, p := range ps {
			c := p.Config
			if c == "" {
				c = "<pooler config>"
			}
			if len(ps) > 1 {
				c = p.Name + ": " + c
			}
			configs = append(configs, c)
		}
	} else {
		configs = []string{"<pooler config>"}
	}
	return Effect{Node: poolerWhere(t),
		Command: fmt.Sprintf("in %s, [databases]: every entry pointing where %s points now (the primary) set to host=%s port=%s, keep the rest (temp file, then mv); entries pointing elsewhere left alone and named; then RELOAD; then SHOW DATABASES must show them at %s:%s",
			strings.Join(configs, ", "), db, conninfo.Quote(host), conninfo.Quote(port), host, port),
		Changes: fmt.Sprintf("PgBouncer sends new server connections for %s, and every entry beside it on the same server, to %s (%s:%s)", poolersDatabase(t), s.To, host, port)}
}

// Apply implements Step.
func (s *PgBouncerRepoint) Apply(ctx context.Context, t *cluster.Target) error {
	fail := func(err error) error { return fmt.Errorf("repoint pgbouncer to %q: %w", s.To, err) }
	ps, err := poolers(t)
	if skipNoPooler(t, err, "repoint") {
		return nil
	}
	if err != nil {
		return fail(err)
	}
	for _, p := range ps {
		if p.Database == "" || p.Config == "" {
			if len(ps) == 1 {
				return fail(errors.New("the inventory's pooler needs database and config"))
			}
			return fail(fmt.Errorf("the inventory's pooler %s needs database and config; nothing changed", p.Name))
		}
	}
	to, err := s.address(t)
	if err != nil {
		return fail(err)
	}
	errs := eachPooler(t, ps, func(p *cluster.Pooler, print func(string)) error {
		return s.repointOne(ctx, t, p, to, print)
	})
	var failed, done []string
	for i, err := range errs {
		if err != nil {
			failed = append(failed, err.Error())
		} else {
			done = append(done, ps[i].Name)
		}
	}
	switch {
	case len(failed) == 0:
		return nil
	case len(ps) == 1:
		return fail(errors.New(failed[0]))
	case len(done) > 0:
		return fail(fmt.Errorf("%s; %s route to %s", strings.Join(failed, "; "), strings.Join(done, ", "), s.To))
	}
	return fail(errors.New(strings.Join(failed, "; ")))
}

// repointOne repoints one pooler; its errors name it when there are
// several.
func (s *PgBouncerRepoint) repointOne(ctx context.Context, t *cluster.Target, p *cluster.Pooler, to hostPort, print func(string)) error {
	fail := func(err error) error {
		if len(t.Cluster.Poolers) > 1 {
			return fmt.Errorf("%s: %w", p.Name, err)
		}
		return err
	}
	prefix := ""
	if len(t.Cluster.Poolers) > 1 {
		prefix = label(t, p) + ": "
	}
	ex, err := p.Host.Executor()
	if err != nil {
		return fail(fmt.Errorf("pooler host: %w", err))
	}
	// The text the pause read, before clients were held, saves a read
	// here (see pgbouncer_config.go); when the file changed since, it is
	// read again.
	text, kept := keptPoolerConfig(t, p.Config)
	// What the pause staged beside the file, when it knew where the
	// repoint goes: moved in place, it saves shipping the file inside the
	// window. Staged for another node (a rollback's repoint), it is
	// removed.
	st, staged := takeStaged(t, p.Config)
	if staged && st.To != to {
		removeStaged(ctx, ex, p.Config)
		staged = false
	}
	var mask *secret.Redactor // masks password= in the entries it prints
	var rp repointed
	for {
		if !kept {
			if text, err = readPoolerConfig(ctx, ex, p.Config); err != nil {
				return fail(err)
			}
		}
		if rp, err = repointConfig(text, p.Database, to); err != nil {
			return fail(fmt.Errorf("%s: %w; nothing changed", p.Config, err))
		}
		if kept && rp.Text == text {
			// Nothing to write by what the pause read: the file itself
			// decides.
			kept = false
			continue
		}
		for _, m := range rp.Moved {
			print(prefix + "old: " + mask.Redact(m.Old))
		}
		if staged {
			staged = false
			if kept && st.Read == text && st.Text == rp.Text {
				err := moveStaged(ctx, ex, p.Config, st)
				if err == nil {
					print(fmt.Sprintf("%s%s: the configuration staged before the pause (%s) moved in place", prefix, p.Config, stagedPath(p.Config)))
					break
				}
				switch {
				case errors.Is(err, errConfigChanged):
					print(prefix + p.Config + " changed since the pause read it; reading it again")
					removeStaged(ctx, ex, p.Config)
					kept = false
					continue
				case errors.Is(err, errStagedChanged):
					print(prefix + stagedPath(p.Config) + " is not what the pause staged; writing the file instead")
				default:
					return fail(fmt.Errorf("%w; the file may be unchanged, pgbouncer still routes %s to the old server", err, p.Database))
				}
			}
			removeStaged(ctx, ex, p.Config)
		}
		if rp.Text == text {
			print(fmt.Sprintf("%s%s already points at %s; file unchanged", prefix, p.Database, to))
		} else if err := writePoolerConfig(ctx, ex, p.Config, text, rp.Text, kept); errors.Is(err, errConfigChanged) {
			print(prefix + p.Config + " changed since the pause read it; reading it again")
			kept = false
			continue
		} else if err != nil {
			return fail(fmt.Errorf("%w; the file may be unchanged, pgbouncer still routes %s to the old server", err, p.Database))
		}
		break
	}
	for _, m := range rp.Moved {
		print(prefix + "new: " + mask.Redact(m.New))
	}
	for _, m := range rp.Left {
		print(fmt.Sprintf("%sleft alone: %s (points at %s, not at %s where %s pointed)", prefix, mask.Redact(m.Old), m.From, rp.From, p.Database))
	}
	// One connection for the RELOAD and the SHOW DATABASES, the one the
	// pause left when there is one, left in turn to the resume that
	// follows.
	client, err := reloadOn(ctx, t, p)
	if err != nil {
		return fail(fmt.Errorf("%s was rewritten, but %w: pgbouncer still routes %s to the old server", p.Config, err, p.Database))
	}
	names := rp.movedNames()
	got, err := routedTo(ctx, client, names)
	if err != nil {
		client.Close()
		return fail(fmt.Errorf("%s was rewritten and reloaded, but checking it failed: %w", p.Config, err))
	}
	keepAdmin(t, p, client)
	for _, name := range names {
		if got[name] != to {
			return fail(fmt.Errorf("%s was rewritten and reloaded, but SHOW DATABASES shows %s at %s, not %s: is pgbouncer reading that file?", p.Config, name, got[name], to))
		}
	}
	print(fmt.Sprintf("%s routes %s to %s (%s)", label(t, p), strings.Join(names, ", "), s.To, to))
	return nil
}

// reloadOn sends RELOAD on the admin connection an earlier step of the run
// left (the pause's), or on one of its own when there is none or that one
// broke since (RELOAD twice is the same as once), and returns the client
// it succeeded on.
func reloadOn(ctx context.Context, t *cluster.Target, p *cluster.Pooler) (*pgbouncer.Client, error) {
	if c := takeKeptAdmin(t, p); c != nil {
		if err := c.Reload(ctx); err == nil {
			return c, nil
		}
		c.Close()
	}
	client, err := pgbouncer.Connect(ctx, p.Admin)
	if err != nil {
		return nil, fmt.Errorf("connect to the pgbouncer admin console: %w", err)
	}
	if err := client.Reload(ctx); err != nil {
		client.Close()
		return nil, err
	}
	return client, nil
}

// writeFileCommand replaces path atomically with the text the command
// reads on its standard input: a temp file beside it (a copy first, so it
// keeps the mode), then mv over the original. The text is never on the
// command line, where ps on the host would show the passwords a
// PgBouncer configuration holds.
func writeFileCommand(path string) string {
	return fmt.Sprintf(`tmp=%s$$; if cp -p %s "$tmp" && cat > "$tmp" && mv -f "$tmp" %s; then exit 0; fi; rm -f "$tmp"; exit 1`,
		transport.ShellQuote(path+".switchover."), transport.ShellQuote(path), transport.ShellQuote(path))
}

// routedTo asks PgBouncer where the named database entries point. An
// entry of the fallback database "*" has no row of its own and is not
// asked.
func routedTo(ctx context.Context, client *pgbouncer.Client, names []string) (map[string]hostPort, error) {
	dbs, err := client.Databases(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]hostPort{}
	for _, name := range names {
		d, err := dbs.Entry(name)
		if err != nil {
			return nil, err
		}
		out[name] = hostPort{Host: d.Host, Port: d.Port}
	}
	return out, nil
}

// entryMove is one [databases] entry and what a repoint does with it.
type entryMove struct {
	Name     string
	From     hostPort // where it pointed
	Old, New string   // the entry before and after, trimmed; New is "" for one left alone
}

// repointed is a PgBouncer configuration with its primary's entries
// pointed elsewhere.
type repointed struct {
	Text  string      // the new configuration
	From  hostPort    // where the client database pointed
	Moved []entryMove // the entries that pointed there, client database first
	Left  []entryMove // the entries that pointed elsewhere, left alone
}

// movedNames are the moved entries that SHOW DATABASES lists.
func (r repointed) movedNames() []string {
	var out []string
	for _, m := range r.Moved {
		if m.Name != "*" {
			out = append(out, m.Name)
		}
	}
	return out
}

// dbEntry is one entry of the [databases] section.
type dbEntry struct {
	line   int
	name   string
	fields []entryField
}

// server is where the entry sends clients: its last host= and port=
// (PgBouncer's default port when it names none).
func (e dbEntry) server() hostPort {
	hp := hostPort{Port: defaultServerPort}
	for _, f := range e.fields {
		switch f.Key {
		case "host":
			hp.Host = f.Value
		case "port":
			hp.Port = f.Value
		}
	}
	return hp
}

// repointConfig rewrites host= and port= of every entry of the [databases]
// section of a PgBouncer configuration that points where db's entry points,
// leaving every other byte as it was.
func repointConfig(text, db string, to hostPort) (repointed, error) {
	lines := strings.SplitAfter(text, "\n")
	var entries []dbEntry
	section, primary := "", -1
	for i, line := range lines {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "[") && strings.HasSuffix(trimmed, "]") {
			section = strings.ToLower(strings.TrimSpace(trimmed[1 : len(trimmed)-1]))
			continue
		}
		if section != "databases" || trimmed == "" || trimmed[0] == ';' || trimmed[0] == '#' {
			continue
		}
		key, value, ok := strings.Cut(strings.TrimRight(line, "\r\n"), "=")
		if !ok {
			continue
		}
		name := strings.Trim(strings.TrimSpace(key), `"`)
		fields, err := entryFields(value)
		if err != nil {
			return repointed{}, fmt.Errorf("[databases] entry %s: %w", name, err)
		}
		if name == db {
			if primary >= 0 {
				return repointed{}, fmt.Errorf("[databases] has more than one entry %s", db)
			}
			primary = len(entries)
		}
		entries = append(entries, dbEntry{line: i, name: name, fields: fields})
	}
	if primary < 0 {
		return repointed{}, fmt.Errorf("[databases] has no entry %s", db)
	}
	out := repointed{From: entries[primary].server()}
	// The client database first, then the others in the file's order.
	order := append([]int{primary}, func() []int {
		var rest []int
		for i := range entries {
			if i != primary {
				rest = append(rest, i)
			}
		}
		return rest
	}()...)
	for _, i := range order {
		e := entries[i]
		body := strings.TrimRight(lines[e.line], "\r\n")
		m := entryMove{Name: e.name, From: e.server(), Old: strings.TrimSpace(body)}
		if m.From != out.From {
			out.Left = append(out.Left, m)
			continue
		}
		newBody := repointEntry(body, e.fields, to)
		lines[e.line] = newBody + lines[e.line][len(body):]
		m.New = strings.TrimSpace(newBody)
		out.Moved = append(out.Moved, m)
	}
	out.Text = strings.Join(lines, "")
	return out, nil
}

// repointEntry sets host= and port= in one [databases] line (without its
// line ending), whose value after the first "=" holds fields.
func repointEntry(body string, ps []entryField, to hostPort) string {
	eq := strings.Index(body, "=") + 1
	value := body[eq:]
	last := map[string]int{}
	for i, p := range ps {
		last[p.Key] = i
	}
	type edit struct {
		start, end int
		text       string
	}
	var edits []edit
	var appended []string
	for _, kv := range []struct{ key, val string }{{"host", to.Host}, {"port", to.Port}} {
		if i, ok := last[kv.key]; ok {
			edits = append(edits, edit{ps[i].start, ps[i].end, conninfo.Quote(kv.val)})
		} else {
			appended = append(appended, kv.key+"="+conninfo.Quote(kv.val))
		}
	}
	// Splice from the end, so the earlier offsets stay right.
	if len(edits) == 2 && edits[0].start < edits[1].start {
		edits[0], edits[1] = edits[1], edits[0]
	}
	for _, e := range edits {
		value = value[:e.start] + e.text + value[e.end:]
	}
	if len(appended) > 0 {
		value = strings.TrimRight(value, " \t") + " " + strings.Join(appended, " ")
	}
	return body[:eq] + value
}

// entryField is one keyword=value pair of a PgBouncer [databases] entry;
// start and end delimit the value's text (quotes included), so a rewrite
// keeps every other byte of the entry as it was.
type entryField struct {
	Key, Value string
	start, end int
}

// entryFields reads the value of a PgBouncer [databases] entry: keyword=value
// pairs, values bare or single-quoted, a backslash escaping the next
// character. This is PgBouncer's configuration, not a connection string the
// tool resolves (it holds pool_size and the like); its errors never quote
// the entry, which may hold a password.
func entryFields(s string) ([]entryField, error) {
	var out []entryField
	space := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' }
	i := 0
	for {
		for i < len(s) && space(s[i]) {
			i++
		}
		if i == len(s) {
			return out, nil
		}
		k := i
		for i < len(s) && s[i] != '=' && !space(s[i]) {
			i++
		}
		key := s[k:i]
		for i < len(s) && space(s[i]) {
			i++
		}
		if i == len(s) || s[i] != '=' {
			return nil, fmt.Errorf("missing \"=\" after %q", key)
		}
		i++
		for i < len(s) && space(s[i]) {
			i++
		}
		start := i
		var val strings.Builder
		if i < len(s) && s[i] == '\'' {
			i++
			closed := false
			for i < len(s) {
				c := s[i]
				if c == '\\' && i+1 < len(s) {
					val.WriteByte(s[i+1])
					i += 2
					continue
				}
				i++
				if c == '\'' {
					closed = true
					break
				}
				val.WriteByte(c)
			}
			if !closed {
				return nil, fmt.Errorf("unterminated quoted value of %q", key)
			}
		} else {
			for i < len(s) && !space(s[i]) {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				val.WriteByte(s[i])
				i++
			}
		}
		out = append(out, entryField{Key: key, Value: val.String(), start: start, end: i})
	}
}
