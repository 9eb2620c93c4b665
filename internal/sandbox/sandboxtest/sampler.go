package sandboxtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
)

// SamplerTable is the table the sampler commits its rows to, on whichever
// node takes them.
const SamplerTable = "switchover_sampler"

// The sampler's pace and bounds: every node is asked at every tick; a
// commit may take up to samplerWrite (a synchronous commit waiting for a
// standby that is gone waits that long, then counts as not acknowledged).
const (
	samplerTick    = 20 * time.Millisecond
	samplerConnect = time.Second
	samplerWrite   = 5 * time.Second
	samplerMinTick = 5
)

// Sampler is an independent writer on every node at once: at every tick it
// asks each node whether it is out of recovery and, when it is, tries to
// commit one row there as an ordinary direct client would (the node's own
// default_transaction_read_only and synchronous replication apply). A split
// brain is what matters to users: two nodes acknowledging commits in
// overlapping time. Being out of recovery is not enough: pg_auto_failover
// promotes its candidate read-only while the old primary stops, and an old
// primary whose synchronous standby has been promoted cannot acknowledge a
// commit; both answer "not in recovery" and neither split is real.
//
// Each node has two sessions of the sampler: one asks its role at every
// tick, the other commits, one attempt at a time (a node still waiting for
// the last commit is not asked to commit again), so a hung node holds two
// connections of the sampler, not one per tick.
type Sampler struct {
	sb    *sandbox.Sandbox
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
	mu    sync.Mutex
	ticks int
	// out[tick] holds the nodes that answered "not in recovery" then.
	out     map[int][]string
	commits []Commit
	failed  map[string]int // commits not acknowledged, by node
}

// Commit is one row the sampler got acknowledged: on which node, when the
// attempt began and when the acknowledgement arrived.
type Commit struct {
	Node       string
	ID         int64
	Start, Ack time.Time
}

func (c Commit) String() string {
	return fmt.Sprintf("%s committed %s..%s", c.Node, c.Start.Format("15:04:05.000"), c.Ack.Format("15:04:05.000"))
}

// Split is two acknowledged commits on two nodes in overlapping time.
type Split struct{ A, B Commit }

func (s Split) String() string { return s.A.String() + " and " + s.B.String() }

// Verdict is what the sampler saw.
type Verdict struct {
	Ticks int
	// Splits are pairs of commits acknowledged by two nodes in
	// overlapping time: two writable primaries.
	Splits []Split
	// OutOfRecovery counts the ticks at which two or more nodes answered
	// "not in recovery", which is not in itself a split (see Sampler).
	OutOfRecovery int
	// Commits are every acknowledged commit, in the order they began.
	Commits []Commit
	// Failed counts the commits tried on a node out of recovery and not
	// acknowledged, by node.
	Failed map[string]int
}

// StartSampler starts sampling every node of sb until Finish.
func StartSampler(sb *sandbox.Sandbox) *Sampler {
	s := &Sampler{sb: sb, stop: make(chan struct{}), done: make(chan struct{}),
		out: map[int][]string{}, failed: map[string]int{}}
	go s.loop()
	return s
}

// prober is one node's pair of sessions: one asks the role at every tick,
// the other commits, one attempt at a time.
type prober struct {
	node                sandbox.Node
	role, write         *pgx.Conn
	roleBusy, writeBusy atomic.Bool
}

func (s *Sampler) loop() {
	probers := make([]*prober, len(s.sb.Nodes))
	for i, n := range s.sb.Nodes {
		probers[i] = &prober{node: n}
	}
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		for _, p := range probers {
			for _, c := range []*pgx.Conn{p.role, p.write} {
				if c != nil {
					c.Close(context.Background())
				}
			}
		}
		close(s.done)
	}()
	tick := time.NewTicker(samplerTick)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		s.mu.Lock()
		s.ticks++
		s.mu.Unlock()
		for _, p := range probers {
			if !p.roleBusy.CompareAndSwap(false, true) {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer p.roleBusy.Store(false)
				if !s.outOfRecovery(p, n) || !p.writeBusy.CompareAndSwap(false, true) {
					return
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer p.writeBusy.Store(false)
					s.commit(p)
				}()
			}()
		}
	}
}

// connect returns c, or a new session to n when c is nil.
func (s *Sampler) connect(c *pgx.Conn, n sandbox.Node) *pgx.Conn {
	if c != nil {
		return c
	}
	ctx, cancel := context.WithTimeout(context.Background(), samplerConnect)
	defer cancel()
	c, err := pg.Connect(ctx, s.sb.Conninfo(n, "postgres")+" application_name=switchover-sampler", 0)
	if err != nil {
		return nil
	}
	return c
}

// outOfRecovery asks p's node whether it is out of recovery, and records
// it at tick when it is.
func (s *Sampler) outOfRecovery(p *prober, tick int) bool {
	if p.role = s.connect(p.role, p.node); p.role == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), samplerConnect)
	defer cancel()
	var rec bool
	if err := p.role.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec); err != nil {
		p.role.Close(context.Background())
		p.role = nil
		return false
	}
	if !rec {
		s.mu.Lock()
		s.out[tick] = append(s.out[tick], p.node.Name)
		s.mu.Unlock()
	}
	return !rec
}

// commit commits one row on p's node as an ordinary client would, and
// records whether the node acknowledged it.
func (s *Sampler) commit(p *prober) {
	if p.write = s.connect(p.write, p.node); p.write == nil {
		return
	}
	conn, name := p.write, p.node.Name
	ctx, cancel := context.WithTimeout(context.Background(), samplerWrite)
	defer cancel()
	insert := func() (int64, error) {
		var id int64
		err := conn.QueryRow(ctx, "INSERT INTO "+SamplerTable+" (node) VALUES ($1) RETURNING id", name).Scan(&id)
		return id, err
	}
	start := time.Now()
	id, err := insert()
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42P01" {
		// The first primary the sampler writes to creates the table;
		// the others have it by replication.
		if _, err = conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+SamplerTable+
			" (id bigserial PRIMARY KEY, node text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())"); err == nil {
			start = time.Now()
			id, err = insert()
		}
	}
	ack := time.Now()
	if err != nil && (conn.IsClosed() || ctx.Err() != nil) {
		conn.Close(context.Background())
		p.write = nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.failed[name]++
		return
	}
	s.commits = append(s.commits, Commit{Node: name, ID: id, Start: start, Ack: ack})
}

// OutOfRecovery counts, so far, the ticks at which two or more nodes
// answered "not in recovery".
func (s *Sampler) OutOfRecovery() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, nodes := range s.out {
		if len(nodes) > 1 {
			n++
		}
	}
	return n
}

// Acknowledged counts, so far, the commits node acknowledged.
func (s *Sampler) Acknowledged(node string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.commits {
		if c.Node == node {
			n++
		}
	}
	return n
}

// NotAcknowledged counts, so far, the commits tried on node while it was
// out of recovery that it did not acknowledge.
func (s *Sampler) NotAcknowledged(node string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed[node]
}

// Finish stops the sampler, after at least a few ticks (a run refused at
// once may end before them), and says what it saw.
func (s *Sampler) Finish() Verdict {
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(samplerTick) {
		s.mu.Lock()
		n := s.ticks
		s.mu.Unlock()
		if n >= samplerMinTick {
			break
		}
	}
	s.once.Do(func() { close(s.stop) })
	<-s.done
	out := s.OutOfRecovery()
	s.mu.Lock()
	defer s.mu.Unlock()
	v := Verdict{Ticks: s.ticks, OutOfRecovery: out, Commits: slices.Clone(s.commits), Failed: map[string]int{}}
	for node, n := range s.failed {
		v.Failed[node] = n
	}
	v.Splits = splits(v.Commits)
	return v
}

// splits finds the commits acknowledged by two nodes in overlapping time:
// sorted by start, a commit overlaps an earlier one of another node when
// that one was acknowledged after this one began.
func splits(commits []Commit) []Split {
	slices.SortFunc(commits, func(a, b Commit) int { return a.Start.Compare(b.Start) })
	last := map[string]Commit{} // by node, the commit acknowledged last so far
	var out []Split
	for _, c := range commits {
		for node, prev := range last {
			if node != c.Node && prev.Ack.After(c.Start) {
				out = append(out, Split{A: prev, B: c})
			}
		}
		if prev, ok := last[c.Node]; !ok || c.Ack.After(prev.Ack) {
			last[c.Node] = c
		}
	}
	return out
}

// Check fails t when two nodes acknowledged commits in overlapping time,
// or when the sampler barely ran; it logs what it saw either way.
func (v Verdict) Check(t testing.TB) {
	t.Helper()
	byNode := map[string]int{}
	for _, c := range v.Commits {
		byNode[c.Node]++
	}
	t.Logf("sampler: %d ticks, commits by node %v, not acknowledged %v, %d ticks with two nodes out of recovery, %d overlapping commits",
		v.Ticks, byNode, v.Failed, v.OutOfRecovery, len(v.Splits))
	if v.Ticks < samplerMinTick {
		t.Errorf("sampler: only %d ticks: the case was not watched", v.Ticks)
	}
	for i, s := range v.Splits {
		if i == 3 {
			t.Errorf("... and %d more", len(v.Splits)-3)
			break
		}
		t.Errorf("two writable primaries: %s", s)
	}
}

// Lost returns the sampler's acknowledged commits that are not on the node
// answering conninfo (the primary now): direct writers' commits lost.
func (v Verdict) Lost(ctx context.Context, conninfo string) ([]Commit, error) {
	if len(v.Commits) == 0 {
		return nil, nil
	}
	c, err := pg.Connect(ctx, conninfo, 0)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())
	ids := make([]int64, len(v.Commits))
	for i, cm := range v.Commits {
		ids[i] = cm.ID
	}
	rows, err := c.Query(ctx, "SELECT id, node FROM "+SamplerTable+" WHERE id = ANY($1)", ids)
	if err != nil {
		return nil, err
	}
	type row struct {
		id   int64
		node string
	}
	found := map[row]bool{}
	var r row
	_, err = pgx.ForEachRow(rows, []any{&r.id, &r.node}, func() error {
		found[r] = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	var lost []Commit
	for _, cm := range v.Commits {
		if !found[row{cm.ID, cm.Node}] {
			lost = append(lost, cm)
		}
	}
	return lost, nil
}

// Nodes names the nodes that acknowledged commits, in the order they first
// did.
func (v Verdict) Nodes() string {
	var out []string
	for _, c := range v.Commits {
		if !slices.Contains(out, c.Node) {
			out = append(out, c.Node)
		}
	}
	return strings.Join(out, " -> ")
}

// CheckKept is Check, and then fails t for every commit the sampler got
// acknowledged, on any node, that primary does not have: a commit an old
// primary took beside the new one, lost. It returns how many were lost.
func (v Verdict) CheckKept(t testing.TB, sb *sandbox.Sandbox, primary string) int {
	t.Helper()
	v.Check(t)
	n, ok := sb.Node(primary)
	if !ok {
		t.Fatalf("the sampler's commits: no node %q", primary)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lost, err := v.Lost(ctx, sb.Conninfo(n, "postgres"))
	if err != nil {
		t.Fatalf("the sampler's commits on %s: %v", primary, err)
	}
	if len(lost) > 0 {
		t.Errorf("%d commits acknowledged to direct writers are not on %s, first %s", len(lost), primary, lost[0])
	}
	return len(lost)
}

// CheckKeptOnPrimary is CheckKept on the one node of sb out of recovery,
// waited for up to a minute; a cluster left without exactly one fails t.
func (v Verdict) CheckKeptOnPrimary(t testing.TB, sb *sandbox.Sandbox) int {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var primaries []string
		for _, n := range sb.Nodes {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			c, err := pg.Connect(ctx, sb.Conninfo(n, "postgres"), 0)
			if err == nil {
				var rec bool
				if c.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec) == nil && !rec {
					primaries = append(primaries, n.Name)
				}
				c.Close(context.Background())
			}
			cancel()
		}
		if len(primaries) == 1 {
			return v.CheckKept(t, sb, primaries[0])
		}
		if time.Now().After(deadline) {
			v.Check(t)
			t.Errorf("the sampler's commits: %d nodes out of recovery %v after the case, want one to look for them on", len(primaries), primaries)
			return 0
		}
		time.Sleep(100 * time.Millisecond)
	}
}
