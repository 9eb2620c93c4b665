// Package canary measures what a switchover costs clients. A writer commits
// a heartbeat row every few milliseconds through the client-facing endpoint
// (the pooler, or a multi-host connection string that finds the primary),
// remembers every acknowledged id and every error with its time, and at the
// end reports the longest gap between two acknowledged commits (the
// write-unavailability window), the client errors, and the acknowledged
// commits missing on the primary afterwards: those are lost.
package canary

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/internal/oneline"
	"github.com/switchover/switchover/internal/pg"
)

// DefaultTable is the prefix of the table heartbeats go to; the run id
// follows it (TableFor), and the writer creates and drops the table.
const DefaultTable = "switchover_canary"

// Options set up a writer.
type Options struct {
	Conninfo string        // the client-facing endpoint
	Interval time.Duration // between commits; default 5ms
	Table    string        // default TableFor(DefaultTable, RunID)
	RunID    string        // tags the rows, so a leftover table from another run cannot confuse the count
	// Existing says Table is there already and stays: the writer neither
	// creates nor drops it, and deletes its own rows at the end. A
	// blue/green move needs it so: DDL is not replicated (and is refused
	// while the move is pending), so the table must be made with the
	// schema before the copy, on both sides, and published like the
	// application's own, for the heartbeats to cross the cutover.
	Existing bool
}

// tableName is a table the writer may name: a plain lower-case name,
// schema-qualified or not.
var tableName = regexp.MustCompile(`^([a-z_][a-z0-9_]{0,62}\.)?[a-z_][a-z0-9_]{0,62}$`)

// TableFor is the heartbeat table of one run: prefix, then the run id made
// a plain lower-case name (at most 63 bytes, PostgreSQL's limit). Every run
// writes, counts and drops its own table, so two runs at once (two
// operators, or a rehearsal beside a switchover) cannot count or drop each
// other's heartbeats.
func TableFor(prefix, runID string) string {
	var b strings.Builder
	b.WriteString(prefix)
	if runID != "" {
		b.WriteByte('_')
	}
	for _, r := range strings.ToLower(runID) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	name := b.String()
	if len(name) > 63 {
		name = name[:63]
	}
	return name
}

// ack is one acknowledged commit.
type ack struct {
	id int64
	at time.Time
}

// ClientError is one failed attempt to connect or commit.
type ClientError struct {
	At  time.Time
	Err string
}

// Writer commits heartbeats until it is stopped.
type Writer struct {
	o       Options
	first   int64 // the last id already in the table for this run; the writer goes on after it
	started time.Time
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	acks    []ack
	errs    []ClientError
	longest time.Duration // the longest one commit waited for its answer
	once    sync.Once
}

// Report is what a writer saw.
type Report struct {
	Acked      int
	Errors     int
	ErrorKinds []string // distinct error messages, at most five
	Window     time.Duration
	WindowFrom time.Time // the last acknowledged commit before the longest gap
	WindowTo   time.Time // the first one after it
	Lost       []int64   // acknowledged ids missing on the primary afterwards
	Ran        time.Duration
	// LongestWait is the longest any one commit waited for its answer
	// (an acknowledgement or an error): how long a client was held.
	LongestWait time.Duration
	// Timeline counts the acknowledged commits in buckets of Bucket from
	// Started: the picture of the window a report draws.
	Started  time.Time
	Bucket   time.Duration
	Timeline []int
}

// maxBuckets bounds a timeline: enough for a picture, small in a journal.
const maxBuckets = 400

// timeline counts acks in equal buckets from start to end.
func timeline(acks []ack, start, end time.Time) (time.Duration, []int) {
	span := end.Sub(start)
	if span <= 0 {
		return 0, nil
	}
	bucket := 10 * time.Millisecond
	for span/bucket >= maxBuckets {
		bucket *= 2
	}
	counts := make([]int, int(span/bucket)+1)
	for _, a := range acks {
		if i := int(a.at.Sub(start) / bucket); i >= 0 && i < len(counts) {
			counts[i]++
		}
	}
	return bucket, counts
}

// Start creates the heartbeat table through the endpoint and starts
// writing. The table is an ordinary, logged one: it must replicate like the
// application's own data, or a lost commit could not be told from a table
// that never reached the standby.
func Start(ctx context.Context, o Options) (*Writer, error) {
	if o.Interval <= 0 {
		o.Interval = 5 * time.Millisecond
	}
	if o.Table == "" {
		o.Table = TableFor(DefaultTable, o.RunID)
	}
	if !tableName.MatchString(o.Table) {
		return nil, fmt.Errorf("canary table %q: want a plain lower-case name", o.Table)
	}
	conn, err := pg.ConnectPooled(ctx, o.Conninfo)
	if err != nil {
		return nil, fmt.Errorf("canary: connect to the endpoint: %w", err)
	}
	defer conn.Close(context.Background())
	if o.Existing {
		// Nothing to create; the read below fails on a missing table.
	} else if _, err := conn.Exec(ctx, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
		id bigint NOT NULL, run_id text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp(),
		PRIMARY KEY (run_id, id))`, o.Table)); err != nil {
		return nil, fmt.Errorf("canary: create table %s: %w", o.Table, err)
	}
	// A resumed run finds the rows its interrupted writer left: go on
	// after them rather than collide with their ids.
	var last int64
	if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT coalesce(max(id), 0) FROM %s WHERE run_id = $1", o.Table), o.RunID).Scan(&last); err != nil {
		return nil, fmt.Errorf("canary: read table %s: %w", o.Table, err)
	}
	w := &Writer{o: o, first: last, started: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w, nil
}

// statementLimit bounds one heartbeat: a commit that takes longer counts
// as an error, and the gap shows it.
const statementLimit = 10 * time.Second

func (w *Writer) loop() {
	defer close(w.done)
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	insert := fmt.Sprintf("INSERT INTO %s (id, run_id) VALUES ($1, $2)", w.o.Table)
	id := w.first
	for {
		select {
		case <-w.stop:
			return
		default:
		}
		if conn == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			c, err := pg.ConnectPooled(ctx, w.o.Conninfo)
			cancel()
			if err != nil {
				w.fail(err)
				w.pause(time.Millisecond)
				continue
			}
			conn = c
		}
		id++
		ctx, cancel := context.WithTimeout(context.Background(), statementLimit)
		sent := time.Now()
		_, err := conn.Exec(ctx, insert, id, w.o.RunID)
		cancel()
		w.waited(time.Since(sent))
		if err != nil {
			w.fail(err)
			conn.Close(context.Background())
			conn = nil
			continue
		}
		w.mu.Lock()
		w.acks = append(w.acks, ack{id: id, at: time.Now()})
		w.mu.Unlock()
		w.pause(w.o.Interval)
	}
}

// waited records how long one commit waited for its answer.
func (w *Writer) waited(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.longest = max(w.longest, d)
}

func (w *Writer) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.errs = append(w.errs, ClientError{At: time.Now(), Err: oneline.Of(err.Error())})
}

func (w *Writer) pause(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-w.stop:
	}
}

// Acked counts the commits acknowledged so far.
func (w *Writer) Acked() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acks)
}

// Close stops writing without verifying: for a run that ends before its
// canary.stop step. It is safe to call more than once.
func (w *Writer) Close() {
	w.once.Do(func() { close(w.stop) })
	<-w.done
}

// Stop stops writing, checks every acknowledged commit against the
// endpoint (which by then reaches the new primary), drops the table and
// reports.
func (w *Writer) Stop(ctx context.Context) (Report, error) {
	w.Close()
	w.mu.Lock()
	acks := append([]ack(nil), w.acks...)
	errs := append([]ClientError(nil), w.errs...)
	longest := w.longest
	w.mu.Unlock()
	r := Report{Acked: len(acks), Errors: len(errs), Ran: time.Since(w.started), LongestWait: longest, Started: w.started}
	r.Bucket, r.Timeline = timeline(acks, w.started, w.started.Add(r.Ran))
	for i := 1; i < len(acks); i++ {
		if gap := acks[i].at.Sub(acks[i-1].at); gap > r.Window {
			r.Window, r.WindowFrom, r.WindowTo = gap, acks[i-1].at, acks[i].at
		}
	}
	seen := map[string]bool{}
	for _, e := range errs {
		if !seen[e.Err] && len(r.ErrorKinds) < 5 {
			seen[e.Err] = true
			r.ErrorKinds = append(r.ErrorKinds, e.Err)
		}
	}
	lost, err := w.verify(ctx, acks)
	if err != nil {
		return r, fmt.Errorf("canary: could not check the %d acknowledged commits on the primary: %w", len(acks), err)
	}
	r.Lost = lost
	return r, nil
}

// verify returns the acknowledged ids missing on the endpoint, then drops
// the table.
func (w *Writer) verify(ctx context.Context, acks []ack) ([]int64, error) {
	var conn *pgx.Conn
	var err error
	// The endpoint may still be settling (a pooler reconnecting to the new
	// primary, a router whose health checks still send some connections to
	// a standby): try for a few seconds, until a connection reaches a
	// server out of recovery.
	deadline := time.Now().Add(10 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err = pg.ConnectPooled(cctx, w.o.Conninfo)
		if err == nil {
			var recovery bool
			if err = conn.QueryRow(cctx, "SELECT pg_is_in_recovery()").Scan(&recovery); err == nil && recovery {
				err = errors.New("the endpoint reached a standby, not the primary")
			}
			if err != nil {
				conn.Close(context.Background())
			}
		}
		cancel()
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT id FROM %s WHERE run_id = $1", w.o.Table), w.o.RunID)
	if err != nil {
		return nil, err
	}
	have := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		have[id] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var lost []int64
	for _, a := range acks {
		if !have[a.id] {
			lost = append(lost, a.id)
		}
	}
	sort.Slice(lost, func(i, j int) bool { return lost[i] < lost[j] })
	if w.o.Existing {
		if _, err := conn.Exec(ctx, fmt.Sprintf("DELETE FROM %s WHERE run_id = $1", w.o.Table), w.o.RunID); err != nil {
			return lost, fmt.Errorf("delete this run's rows from %s: %w", w.o.Table, err)
		}
		return lost, nil
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("DROP TABLE IF EXISTS %s", w.o.Table)); err != nil {
		return lost, fmt.Errorf("drop table %s: %w", w.o.Table, err)
	}
	return lost, nil
}
