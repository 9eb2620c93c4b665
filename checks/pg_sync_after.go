package checks

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
)

func init() {
	Register(Definition{
		Kind: "pg.sync_after",
		Doc:  "the synchronous_standby_names the new primary gets (the primary's, the old primary in the candidate's place; or as given) can be satisfied by the standbys that will follow it; records the promise as facts",
		Params: []params.Spec{
			{Name: "primary", Type: params.Node, Required: true,
				Doc: "inventory node that is the primary now; its synchronous_standby_names and pg_stat_replication are read"},
			{Name: "candidate", Type: params.Node, Required: true,
				Doc: "inventory node about to be promoted"},
			{Name: "setting", Type: params.String,
				Doc: `synchronous_standby_names for the new primary; "" derives it from the primary's, the old primary taking the candidate's place`},
		},
		New: newSyncAfter,
	})
}

// SyncAfter passes when the synchronous replication the primary promises
// can be kept once the candidate is the primary: the setting the candidate
// will get (Setting, or the primary's with the old primary in the
// candidate's place, since every standby the tool repoints streams under
// its node name) names enough of the standbys that will stream from it (the
// other nodes of the inventory). A setting that cannot be satisfied would
// make every commit on the new primary wait forever; one that is dropped
// (the setting lives in the old primary's postgresql.auto.conf) silently
// makes every standby asynchronous. It records the promise as facts: the
// setting before and after, and how many sync or quorum standbys the new
// primary must show (as many as the old one did).
type SyncAfter struct {
	Primary   string
	Candidate string
	Setting   string // "" derives it
}

var _ Check = (*SyncAfter)(nil)

func newSyncAfter(v params.Values) (Check, error) {
	c := &SyncAfter{Primary: v.Node("primary"), Candidate: v.Node("candidate"),
		Setting: strings.TrimSpace(v.String("setting"))}
	switch {
	case c.Primary == "":
		return nil, errors.New("primary is empty")
	case c.Candidate == "":
		return nil, errors.New("candidate is empty")
	case c.Primary == c.Candidate:
		return nil, fmt.Errorf("primary and candidate are both %q", c.Primary)
	}
	if c.Setting != "" {
		if _, err := pg.ParseSyncStandbyNames(c.Setting); err != nil {
			return nil, fmt.Errorf("setting %q is not a synchronous_standby_names: %w", c.Setting, err)
		}
	}
	return c, nil
}

// Describe implements Check.
func (c *SyncAfter) Describe(*cluster.Target) string {
	how := fmt.Sprintf("%s's synchronous_standby_names with %s in %s's place", c.Primary, c.Primary, c.Candidate)
	if c.Setting != "" {
		how = fmt.Sprintf("synchronous_standby_names = %q", c.Setting)
	}
	return fmt.Sprintf("on %s: SELECT setting FROM pg_settings WHERE name = 'synchronous_standby_names'; SELECT application_name, state, sync_state FROM pg_stat_replication; on %s: pg_stat_wal_receiver.conninfo; then %s, the new primary, can keep %s and the standbys that will follow it satisfy it",
		c.Primary, c.Candidate, c.Candidate, how)
}

// Run implements Check.
func (c *SyncAfter) Run(ctx context.Context, t *cluster.Target) Result {
	return withWanted(c.run(ctx, t), c, t)
}

func (c *SyncAfter) run(ctx context.Context, t *cluster.Target) Result {
	if _, err := t.Node(c.Candidate); err != nil {
		return Errored(err)
	}
	conn, err := connectNode(ctx, t, c.Primary)
	if err != nil {
		return Errored(err)
	}
	defer closeConn(conn)
	var recovery bool
	if err := conn.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&recovery); err != nil {
		return Errored(fmt.Errorf("ask %s whether it is in recovery: %s", c.Primary, queryProblem(ctx, err)))
	}
	if recovery {
		return Errored(fmt.Errorf("%s is in recovery, not a primary: it promises nothing about synchronous replication", c.Primary))
	}
	setting, err := pg.ReadSetting(ctx, conn, "synchronous_standby_names")
	if err != nil {
		return Errored(fmt.Errorf("read synchronous_standby_names on %s: %s", c.Primary, queryProblem(ctx, err)))
	}
	before, err := pg.ParseSyncStandbyNames(setting.Value)
	if err != nil {
		return Errored(fmt.Errorf("synchronous_standby_names %q on %s: %w", setting.Value, c.Primary, err))
	}
	senders, err := pg.WALSenders(ctx, conn)
	if err != nil {
		return Errored(fmt.Errorf("read pg_stat_replication on %s: %s", c.Primary, queryProblem(ctx, err)))
	}
	apps := []string{c.Candidate}
	if cand, err := connectNode(ctx, t, c.Candidate); err == nil {
		app, err := pg.ReceiverApplicationName(ctx, cand)
		closeConn(cand)
		if err != nil {
			return Errored(fmt.Errorf("read pg_stat_wal_receiver on %s: %s", c.Candidate, queryProblem(ctx, err)))
		}
		if app != "" && !strings.EqualFold(app, c.Candidate) {
			apps = append(apps, app)
		}
	} else {
		return Errored(err)
	}
	var standbys []string
	for _, n := range t.Cluster.NodeOrder() {
		if n != c.Candidate {
			standbys = append(standbys, n)
		}
	}
	return c.judge(t, before, senders, apps, standbys)
}

// judge derives (or takes) the new primary's setting, decides whether the
// standbys that will follow it satisfy it, and records the promise.
func (c *SyncAfter) judge(t *cluster.Target, before pg.SyncConfig, senders []pg.WALSender, candidateApps, standbys []string) Result {
	beforeCount := 0
	var sync []string
	for _, w := range senders {
		if w.Synchronous() {
			beforeCount++
			sync = append(sync, fmt.Sprintf("%s (%s)", w.App, w.SyncState))
		}
	}
	after, derived := before.AfterSwitch(candidateApps, c.Primary), true
	if c.Setting != "" {
		after, _ = pg.ParseSyncStandbyNames(c.Setting) // checked by newSyncAfter
		derived = false
	}
	satisfiers := after.Satisfiers(standbys)
	want := after.Reach(standbys)
	if derived && beforeCount < want {
		want = beforeCount
	}
	values := map[string]any{
		"before": before.String(), "before_count": beforeCount, "after": after.String(), "want_count": want,
		"derived": derived, "standbys_after": standbys, "satisfiers": nonNil(satisfiers),
	}
	now := "none"
	if len(sync) > 0 {
		now = strings.Join(sync, ", ")
	}
	seen := fmt.Sprintf("synchronous_standby_names on %s is %s (sync or quorum standbys now: %s)", c.Primary, quoted(before), now)
	how := fmt.Sprintf("derived: %s takes %s's place", c.Primary, c.Candidate)
	if !derived {
		how = "as the runbook says"
	}
	if before.Method == pg.SyncOff && after.Method == pg.SyncOff {
		how = "synchronous replication stays off"
	}
	if after.Method != pg.SyncOff && len(satisfiers) < after.Num {
		names := "none of them"
		if len(satisfiers) > 0 {
			names = "only " + strings.Join(satisfiers, ", ")
		}
		r := Failed(fmt.Sprintf("%s; %s would get %s (%s), which the standbys that will stream from it (%s) cannot satisfy: it needs %d, and it names %s; every commit on %s would wait forever",
			seen, c.Candidate, quoted(after), how, strings.Join(standbys, ", "), after.Num, names, c.Candidate),
			fmt.Sprintf("a synchronous_standby_names for %s that names at least %d of %s (set the runbook's sync_standby_names_after, or change synchronous_standby_names on %s first)",
				c.Candidate, after.Num, strings.Join(standbys, ", "), c.Primary))
		r.Values = values
		return r
	}
	if t != nil && t.Facts != nil {
		t.Facts.Set(cluster.SyncBeforeFact, before.String())
		t.Facts.Set(cluster.SyncBeforeCountFact, strconv.Itoa(beforeCount))
		t.Facts.Set(cluster.SyncAfterFact, after.String())
		t.Facts.Set(cluster.SyncWantCountFact, strconv.Itoa(want))
	}
	msg := fmt.Sprintf("%s; %s gets %s before its promotion (%s)", seen, c.Candidate, quoted(after), how)
	if after.Method != pg.SyncOff {
		msg += fmt.Sprintf("; once %s follow it, %d sync or quorum standby(s) expected", strings.Join(satisfiers, ", "), want)
		if beforeCount > want {
			msg += fmt.Sprintf(", fewer than the %d now", beforeCount)
		}
	}
	r := Passed(msg)
	r.Wanted = fmt.Sprintf("a synchronous_standby_names for %s that the standbys following it can satisfy", c.Candidate)
	r.Values = values
	return r
}

// quoted renders a parsed synchronous_standby_names for a message.
func quoted(s pg.SyncConfig) string {
	if s.Method == pg.SyncOff {
		return `"" (off)`
	}
	return fmt.Sprintf("%q", s.String())
}
