package steps

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/conninfo"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/secret"
	"github.com/switchover/switchover/internal/transport"
)

func init() {
	Register(Definition{
		Kind: "pgbouncer.pause",
		Doc:  "pauses the pooler's database: clients wait instead of failing while the primary moves",
		Params: []params.Spec{
			{Name: "max_wait", Type: params.Duration, Default: "10s",
				Doc: "how long PAUSE may wait for running transactions to finish; after that the pooler is resumed and the step fails"},
			{Name: "max_hold", Type: params.Duration, Default: "30s",
				Doc: "the most clients may be held, from the pause to the resume, whatever happens: every step in between spends it, and a guard that outlives the run resumes the pooler by then"},
		},
		New: func(v params.Values) (Step, error) {
			switch {
			case v.Duration("max_wait") <= 0:
				return nil, errors.New(`parameter "max_wait" must be more than 0`)
			case v.Duration("max_hold") <= 0:
				return nil, errors.New(`parameter "max_hold" must be more than 0`)
			case v.Duration("max_wait") >= v.Duration("max_hold"):
				return nil, fmt.Errorf(`parameter "max_wait" (%s) must be less than "max_hold" (%s): the pause itself spends the hold`, v.Duration("max_wait"), v.Duration("max_hold"))
			}
			return &PgBouncerPause{MaxWait: v.Duration("max_wait"), MaxHold: v.Duration("max_hold")}, nil
		},
	})
	Register(Definition{
		Kind: "pgbouncer.resume",
		Doc:  "resumes the pooler's database, so waiting clients go on; succeeds when it is not paused",
		New:  func(params.Values) (Step, error) { return &PgBouncerResume{}, nil },
	})
	Register(Definition{
		Kind: "pgbouncer.repoint",
		Doc:  "points the pooler's database entry at another node and reloads the pooler",
		Params: []params.Spec{
			{Name: "to", Type: params.Node, Required: true, Doc: "the node clients are to reach, usually the new primary; its conninfo gives host and port"},
		},
		New: func(v params.Values) (Step, error) {
			return &PgBouncerRepoint{To: v.Node("to")}, nil
		},
	})
}

// pooler returns the inventory's pooler, which must be a PgBouncer.
// errNoPooler: the inventory has no pooler, so clients connect to the
// nodes directly and the pooler steps have nothing to do.
var errNoPooler = errors.New("the inventory has no pooler")

// skipNoPooler says so and succeeds when err is errNoPooler.
func skipNoPooler(t *cluster.Target, err error, what string) bool {
	if !errors.Is(err, errNoPooler) {
		return false
	}
	t.Unchanged("no pooler in the inventory: clients connect to the nodes directly; nothing to " + what)
	return true
}

func pooler(t *cluster.Target) (*cluster.Pooler, error) {
	if t == nil || t.Cluster == nil || t.Cluster.Pooler == nil {
		return nil, errNoPooler
	}
	p := t.Cluster.Pooler
	if p.Kind != "" && p.Kind != "pgbouncer" {
		return nil, fmt.Errorf("the inventory's pooler is %q, not pgbouncer", p.Kind)
	}
	return p, nil
}

// poolerExecutor returns how to run commands on the pooler's host.
func poolerExecutor(t *cluster.Target) (transport.Executor, error) {
	p, err := pooler(t)
	if err != nil {
		return nil, err
	}
	ex, err := p.Host.Executor()
	if err != nil {
		return nil, fmt.Errorf("pooler host: %w", err)
	}
	return ex, nil
}

// poolerWhere names the pooler for plans: "pgbouncer (local as postgres)".
func poolerWhere(t *cluster.Target) string {
	ex, err := poolerExecutor(t)
	if err != nil {
		return fmt.Sprintf("pgbouncer (%v)", err)
	}
	return fmt.Sprintf("pgbouncer (%s)", ex.Where())
}

// poolerDatabase is the database entry the steps act on, for messages.
func poolerDatabase(t *cluster.Target) string {
	if p, err := pooler(t); err == nil && p.Database != "" {
		return p.Database
	}
	return "<database>"
}

// adminCommand is an admin console command for the pooler's database; with
// no database in the inventory it acts on every database.
func adminCommand(verb string, p *cluster.Pooler) string {
	if p == nil || p.Database == "" {
		return verb
	}
	return verb + " " + p.Database
}

func describeAdmin(t *cluster.Target, verb string) string {
	p, _ := pooler(t)
	if p == nil {
		return verb + " <database>"
	}
	return adminCommand(verb, p)
}

// adminExec runs one command on PgBouncer's admin console.
func adminExec(ctx context.Context, p *cluster.Pooler, command string) error {
	conn, err := pg.ConnectAdmin(ctx, p.Admin)
	if err != nil {
		return fmt.Errorf("connect to the pgbouncer admin console: %w", err)
	}
	defer closeConn(conn)
	if _, err := conn.Exec(ctx, command); err != nil {
		return fmt.Errorf("%s: %w", command, err)
	}
	return nil
}

// notPaused reports whether err is PgBouncer refusing RESUME because there
// is nothing paused.
func notPaused(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && strings.Contains(pe.Message, "not paused")
}

// resumeAfterFailedPause resumes on a fresh admin connection with a
// deadline of its own: the pause's context may be what ran out. Nothing
// paused counts as resumed.
func resumeAfterFailedPause(ctx context.Context, p *cluster.Pooler) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := adminExec(rctx, p, adminCommand("RESUME", p)); err != nil && !notPaused(err) {
		return err
	}
	return nil
}

// PgBouncerPause is a step that makes PgBouncer hold its clients' queries: it
// waits for running transactions to finish, then lets no query through
// until RESUME. Clients see a pause instead of errors while the primary
// moves. PAUSE can wait for ever on a transaction left open, so it is
// bounded: when it does not complete in time, the pooler is resumed and the
// step fails with clients still on the old primary.
type PgBouncerPause struct {
	MaxWait time.Duration
	// MaxHold caps how long clients are held, from the pause to the
	// resume (see cluster.Target.BeginHold).
	MaxHold time.Duration
}

var _ Step = (*PgBouncerPause)(nil)

// Describe implements Step.
func (s *PgBouncerPause) Describe(t *cluster.Target) Effect {
	return Effect{Node: poolerWhere(t), Command: describeAdmin(t, "PAUSE"),
		Changes: fmt.Sprintf("PgBouncer waits up to %s for running transactions on %s to finish, closes its server connections, and holds new queries until RESUME; clients wait instead of failing (if it does not complete in time, it is resumed and the step fails); clients are held %s at most, whatever happens to this run",
			s.MaxWait, poolerDatabase(t), s.MaxHold)}
}

// Apply implements Step.
func (s *PgBouncerPause) Apply(ctx context.Context, t *cluster.Target) error {
	p, err := pooler(t)
	if skipNoPooler(t, err, "pause") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pause pgbouncer: %w", err)
	}
	cmd := adminCommand("PAUSE", p)
	fail := func(err error) error { return fmt.Errorf("pause pgbouncer (%s): %w", cmd, err) }
	conn, err := pg.ConnectAdmin(ctx, p.Admin)
	if err != nil {
		return fail(fmt.Errorf("connect to the admin console: %w; nothing paused", err))
	}
	defer closeConn(conn)
	// PgBouncer takes a second PAUSE of a paused database without a word:
	// a pause already there is someone else's (another run, an operator),
	// and this run must neither add to it nor, later, lift it.
	if by, err := pausedAlready(ctx, conn, p); err != nil {
		return fail(fmt.Errorf("%w; nothing paused", err))
	} else if by != "" {
		setPaused(t, pausedNo)
		return fail(fmt.Errorf("%s is paused already (%s), by another run or an operator: this run paused nothing and will not resume it", poolerDatabase(t), by))
	}
	// The budget and the guard before anything is held.
	if err := t.BeginHold(s.MaxHold); err != nil {
		setPaused(t, pausedNo)
		return fail(fmt.Errorf("%w; nothing paused", err))
	}
	// Journaled before PAUSE is sent: a run killed while it waits has
	// paused the pooler as far as anyone can tell, and its resume sends
	// RESUME.
	setPaused(t, pausedSent)
	pctx, cancel := context.WithTimeout(ctx, s.MaxWait)
	start := time.Now()
	_, err = conn.Exec(pctx, cmd)
	cutOff := pctx.Err() != nil
	cancel()
	if err == nil {
		setPaused(t, pausedYes)
		t.Print(fmt.Sprintf("pgbouncer paused %s in %s: clients wait until RESUME, %s at most (fact %s)", poolerDatabase(t), since(start), s.MaxHold, PausedFact))
		return nil
	}
	// Whatever happens below, the clients are not held by this pause.
	defer t.EndHold()
	var pe *pgconn.PgError
	if !cutOff && errors.As(err, &pe) {
		// PgBouncer refused it (already paused by someone else, say):
		// this run paused nothing and must resume nothing.
		setPaused(t, pausedNo)
		return fail(fmt.Errorf("%w; nothing paused", err))
	}
	// PAUSE did not complete, but PgBouncer keeps pausing without us: the
	// clients are stuck until someone resumes.
	cause := fmt.Errorf("no answer: %w", err)
	switch {
	case ctx.Err() != nil:
		cause = fmt.Errorf("cut off after %s before it completed: %w", since(start), ctx.Err())
	case cutOff:
		cause = fmt.Errorf("running transactions did not finish within %s", s.MaxWait)
	}
	resume := adminCommand("RESUME", p)
	if rerr := resumeAfterFailedPause(ctx, p); rerr != nil {
		return fail(fmt.Errorf("%w; then %s failed too, so clients may be left waiting in pgbouncer: %v", cause, resume, rerr))
	}
	setPaused(t, pausedNo)
	t.Print(fmt.Sprintf("%s did not complete (%v); %s issued", cmd, cause, resume))
	return fail(fmt.Errorf("%w; %s issued: clients resumed on the old primary", cause, resume))
}

// PausedFact is the fact pgbouncer.pause journals about the pause it sent:
// pausedSent just before PAUSE goes out, pausedYes once it completed,
// pausedNo when PgBouncer refused it or the step resumed after it. Only a
// run whose journal says it paused the pooler resumes it, so a run never
// releases clients another run (or an operator) holds.
const PausedFact = "pgbouncer.paused_by_run"

// The values of PausedFact.
const (
	pausedSent = "sent"
	pausedYes  = "yes"
	pausedNo   = "no"
)

// setPaused journals whether this run holds the pooler paused.
func setPaused(t *cluster.Target, v string) {
	if t != nil && t.Facts != nil {
		t.Facts.Set(PausedFact, v)
	}
}

// pausedByRun reports whether this run's journal says it paused the pooler
// (or sent PAUSE and could not tell), and says what it knows.
func pausedByRun(t *cluster.Target) (bool, string) {
	v := ""
	if t != nil && t.Facts != nil {
		v, _ = t.Facts.Get(PausedFact)
	}
	switch v {
	case pausedYes:
		return true, "this run paused it"
	case pausedSent:
		return true, "this run sent PAUSE and did not hear back"
	case pausedNo:
		return false, "this run's PAUSE was refused or it resumed the pooler itself since"
	}
	return false, "this run never paused it"
}

// pausedAlready says how the pooler is paused now ("SHOW STATE: paused",
// "SHOW DATABASES: app paused"), or "" when it is not: the whole pooler,
// or the database entry a PAUSE of this inventory acts on.
func pausedAlready(ctx context.Context, conn *pgx.Conn, p *cluster.Pooler) (string, error) {
	rows, err := conn.Query(ctx, "SHOW DATABASES")
	if err != nil {
		return "", fmt.Errorf("SHOW DATABASES: %w", err)
	}
	col := map[string]int{}
	for i, f := range rows.FieldDescriptions() {
		col[f.Name] = i
	}
	iName, ok1 := col["name"]
	iPaused, ok2 := col["paused"]
	if !ok1 || !ok2 {
		rows.Close()
		return "", errors.New("SHOW DATABASES has no name and paused columns")
	}
	var names []string
	for rows.Next() {
		raw := rows.RawValues()
		if string(raw[iPaused]) == "1" && (p.Database == "" || string(raw[iName]) == p.Database) {
			names = append(names, string(raw[iName]))
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("SHOW DATABASES: %w", err)
	}
	if len(names) > 0 {
		return "SHOW DATABASES: " + strings.Join(names, ", ") + " paused", nil
	}
	// A PAUSE of the whole pooler shows in SHOW STATE (PgBouncer 1.19 and
	// later); older ones do not know the command.
	unknown := func(err error) bool {
		var pe *pgconn.PgError
		return errors.As(err, &pe) && strings.Contains(pe.Message, "invalid command")
	}
	state := map[string]string{}
	rows, err = conn.Query(ctx, "SHOW STATE")
	if err == nil {
		for rows.Next() {
			raw := rows.RawValues()
			if len(raw) >= 2 {
				state[string(raw[0])] = string(raw[1])
			}
		}
		rows.Close()
		err = rows.Err()
	}
	if err != nil && !unknown(err) {
		return "", fmt.Errorf("SHOW STATE: %w", err)
	}
	if state["paused"] == "yes" || state["suspended"] == "yes" {
		return "SHOW STATE: the whole pooler is paused", nil
	}
	return "", nil
}

// PgBouncerResume is a step that lets PgBouncer's waiting clients go on, to
// whatever its database entry points at now. It acts only when this run
// paused the pooler (the fact pgbouncer.pause journaled): a run refused or
// failed before its pause, or one whose pause was refused, sends nothing,
// so a pause held by another run or an operator stays. Resuming a database
// that is not paused succeeds, so a finally section may always run it.
type PgBouncerResume struct{}

var _ Step = (*PgBouncerResume)(nil)

// Describe implements Step.
func (s *PgBouncerResume) Describe(t *cluster.Target) Effect {
	return Effect{Node: poolerWhere(t), Command: describeAdmin(t, "RESUME"),
		Changes: fmt.Sprintf("PgBouncer lets the clients of %s go on, to the server its entry points at; sent only if this run paused it (fact %s), nothing when it is not paused", poolerDatabase(t), PausedFact)}
}

// Apply implements Step.
func (s *PgBouncerResume) Apply(ctx context.Context, t *cluster.Target) error {
	p, err := pooler(t)
	if skipNoPooler(t, err, "resume") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("resume pgbouncer: %w", err)
	}
	if ours, why := pausedByRun(t); !ours {
		t.Unchanged(fmt.Sprintf("pgbouncer: RESUME %s not sent: %s (fact %s), and a pause it did not make is not its to lift", poolerDatabase(t), why, PausedFact))
		return nil
	}
	err = adminExec(ctx, p, adminCommand("RESUME", p))
	switch {
	case notPaused(err):
		t.EndHold()
		setPaused(t, pausedNo)
		t.Unchanged(fmt.Sprintf("pgbouncer: %s was not paused; nothing to resume", poolerDatabase(t)))
		return nil
	case err != nil:
		return fmt.Errorf("resume pgbouncer: %w; clients may still be waiting", err)
	}
	t.EndHold()
	setPaused(t, pausedNo)
	t.Print(fmt.Sprintf("pgbouncer resumed %s: waiting clients go on", poolerDatabase(t)))
	return nil
}

// ReleasesClients implements ClientReleaser.
func (s *PgBouncerResume) ReleasesClients() bool { return true }

// ReleasesClients implements ClientReleaser: a repoint is what lets held
// clients reach the new primary.
func (s *PgBouncerRepoint) ReleasesClients() bool { return true }

// PgBouncerRepoint is a step that sends PgBouncer's clients to another node:
// it rewrites host= and port= of the database's entry in [databases],
// keeping everything else in the file, reloads PgBouncer, and checks with
// SHOW DATABASES that the entry took.
type PgBouncerRepoint struct {
	To string
}

var _ Step = (*PgBouncerRepoint)(nil)

// maxPoolerConfig bounds the configuration file the step rewrites: it is
// read and written back through shell commands.
const maxPoolerConfig = 60000

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
	config := "<pooler config>"
	if p, err := pooler(t); err == nil && p.Config != "" {
		config = p.Config
	}
	db := poolerDatabase(t)
	return Effect{Node: poolerWhere(t),
		Command: fmt.Sprintf("in %s, [databases] entry %s: set host=%s port=%s, keep the rest (temp file, then mv); then RELOAD; then SHOW DATABASES must show %s at %s:%s",
			config, db, conninfo.Quote(host), conninfo.Quote(port), db, host, port),
		Changes: fmt.Sprintf("PgBouncer sends new server connections for %s to %s (%s:%s)", db, s.To, host, port)}
}

// Apply implements Step.
func (s *PgBouncerRepoint) Apply(ctx context.Context, t *cluster.Target) error {
	fail := func(err error) error { return fmt.Errorf("repoint pgbouncer to %q: %w", s.To, err) }
	p, err := pooler(t)
	if skipNoPooler(t, err, "repoint") {
		return nil
	}
	if err != nil {
		return fail(err)
	}
	if p.Database == "" || p.Config == "" {
		return fail(errors.New("the inventory's pooler needs database and config"))
	}
	to, err := s.address(t)
	if err != nil {
		return fail(err)
	}
	ex, err := poolerExecutor(t)
	if err != nil {
		return fail(err)
	}
	out, err := run(ctx, ex, "read "+p.Config, fmt.Sprintf("wc -c < %s && cat %s", transport.ShellQuote(p.Config), transport.ShellQuote(p.Config)))
	if err != nil {
		return fail(err)
	}
	sizeLine, text, _ := strings.Cut(out.Stdout, "\n")
	size, err := strconv.Atoi(strings.TrimSpace(sizeLine))
	switch {
	case err != nil:
		return fail(fmt.Errorf("read %s: cannot tell its size", p.Config))
	case size > maxPoolerConfig:
		return fail(fmt.Errorf("%s has %d bytes, more than the %d it rewrites; nothing changed", p.Config, size, maxPoolerConfig))
	case size != len(text):
		return fail(fmt.Errorf("read %s: got %d of its %d bytes; nothing changed", p.Config, len(text), size))
	}
	updated, oldEntry, newEntry, err := repointConfig(text, p.Database, to)
	if err != nil {
		return fail(fmt.Errorf("%s: %w; nothing changed", p.Config, err))
	}
	var mask *secret.Redactor // masks password= in the entries it prints
	t.Print("old: " + mask.Redact(oldEntry))
	if updated == text {
		t.Unchanged(fmt.Sprintf("%s already points at %s; file unchanged", p.Database, to))
	} else if _, err := run(ctx, ex, "write "+p.Config, writeFileCommand(p.Config, updated)); err != nil {
		return fail(fmt.Errorf("%w; the file may be unchanged, pgbouncer still routes %s to the old server", err, p.Database))
	}
	t.Print("new: " + mask.Redact(newEntry))
	if err := adminExec(ctx, p, "RELOAD"); err != nil {
		return fail(fmt.Errorf("%s was rewritten, but %w: pgbouncer still routes %s to the old server", p.Config, err, p.Database))
	}
	got, err := routedTo(ctx, p)
	if err != nil {
		return fail(fmt.Errorf("%s was rewritten and reloaded, but checking it failed: %w", p.Config, err))
	}
	if got != to {
		return fail(fmt.Errorf("%s was rewritten and reloaded, but SHOW DATABASES shows %s at %s, not %s: is pgbouncer reading that file?", p.Config, p.Database, got, to))
	}
	t.Print(fmt.Sprintf("pgbouncer routes %s to %s (%s)", p.Database, s.To, got))
	return nil
}

// writeFileCommand replaces path with text atomically: a temp file beside
// it (a copy first, so it keeps the mode), then mv over the original.
func writeFileCommand(path, text string) string {
	return fmt.Sprintf(`tmp=%s$$; if cp -p %s "$tmp" && printf '%%s' %s > "$tmp" && mv -f "$tmp" %s; then exit 0; fi; rm -f "$tmp"; exit 1`,
		transport.ShellQuote(path+".switchover."), transport.ShellQuote(path), transport.ShellQuote(text), transport.ShellQuote(path))
}

// routedTo asks PgBouncer where its database entry points.
func routedTo(ctx context.Context, p *cluster.Pooler) (hostPort, error) {
	conn, err := pg.ConnectAdmin(ctx, p.Admin)
	if err != nil {
		return hostPort{}, fmt.Errorf("connect to the admin console: %w", err)
	}
	defer closeConn(conn)
	rows, err := conn.Query(ctx, "SHOW DATABASES")
	if err != nil {
		return hostPort{}, fmt.Errorf("SHOW DATABASES: %w", err)
	}
	defer rows.Close()
	col := map[string]int{}
	for i, f := range rows.FieldDescriptions() {
		col[f.Name] = i
	}
	iName, ok1 := col["name"]
	iHost, ok2 := col["host"]
	iPort, ok3 := col["port"]
	if !ok1 || !ok2 || !ok3 {
		return hostPort{}, errors.New("SHOW DATABASES has no name, host and port columns")
	}
	for rows.Next() {
		raw := rows.RawValues()
		if string(raw[iName]) == p.Database {
			return hostPort{Host: string(raw[iHost]), Port: string(raw[iPort])}, nil
		}
	}
	if err := rows.Err(); err != nil {
		return hostPort{}, fmt.Errorf("SHOW DATABASES: %w", err)
	}
	return hostPort{}, fmt.Errorf("SHOW DATABASES has no entry %s", p.Database)
}

// repointConfig rewrites host= and port= of db's entry in the [databases]
// section of a PgBouncer configuration, leaving every other byte as it
// was. It returns the new text and the entry before and after.
func repointConfig(text, db string, to hostPort) (updated, oldEntry, newEntry string, err error) {
	lines := strings.SplitAfter(text, "\n")
	section, found := "", -1
	for i, line := range lines {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "[") && strings.HasSuffix(trimmed, "]") {
			section = strings.ToLower(strings.TrimSpace(trimmed[1 : len(trimmed)-1]))
			continue
		}
		if section != "databases" || trimmed == "" || trimmed[0] == ';' || trimmed[0] == '#' {
			continue
		}
		key, _, ok := strings.Cut(line, "=")
		if !ok || strings.Trim(strings.TrimSpace(key), `"`) != db {
			continue
		}
		if found >= 0 {
			return "", "", "", fmt.Errorf("[databases] has more than one entry %s", db)
		}
		found = i
	}
	if found < 0 {
		return "", "", "", fmt.Errorf("[databases] has no entry %s", db)
	}
	line := lines[found]
	body := strings.TrimRight(line, "\r\n")
	eol := line[len(body):]
	eq := strings.Index(body, "=") + 1
	value := body[eq:]
	ps, err := entryFields(value)
	if err != nil {
		return "", "", "", fmt.Errorf("[databases] entry %s: %w", db, err)
	}
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
	newBody := body[:eq] + value
	lines[found] = newBody + eol
	return strings.Join(lines, ""), strings.TrimSpace(body), strings.TrimSpace(newBody), nil
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
