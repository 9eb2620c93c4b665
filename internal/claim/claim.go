// Package claim keeps a run's claim on a cluster inside the cluster itself:
// a row in a small table of switchover's on the primary. The row replicates
// to every standby, so it is on the new primary after a promotion, and every
// operator's run sees it whatever host, OS user or journal directory it runs
// from. The primary is the arbiter: of two runs that start at once, one
// inserts the row and the other finds it.
package claim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/patroni"
	"github.com/switchover/switchover/internal/pg"
)

// Holder is who holds a claim: the run, and where it runs.
type Holder struct {
	RunID string    `json:"run_id"`
	User  string    `json:"user"`
	Host  string    `json:"host"`
	PID   int       `json:"pid"`
	Since time.Time `json:"since"`
}

// String says who holds a claim, in the words of a refusal.
func (h Holder) String() string {
	return fmt.Sprintf("run %s by %s@%s (pid %d) since %s", h.RunID, h.User, h.Host, h.PID, h.Since.UTC().Format(time.RFC3339))
}

// ErrUnreachable is returned by Take when no node answers at all: there is
// nowhere to keep the claim (and nothing a run could change either).
var ErrUnreachable = errors.New("no node answers")

// HeldError is returned when another run holds the cluster's claim.
type HeldError struct {
	Cluster string
	Holder  Holder
	Node    string // where the claim was seen
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("cluster %q is claimed by %s (seen on %s)", e.Cluster, e.Holder, e.Node)
}

// Schema and Table name where the claim lives, in the database of each
// node's connection string.
const (
	Schema = "switchover"
	Table  = Schema + ".run_claim"
)

const (
	createSQL = `CREATE SCHEMA IF NOT EXISTS ` + Schema + `;
CREATE TABLE IF NOT EXISTS ` + Table + ` (
  cluster text PRIMARY KEY,
  run_id  text NOT NULL,
  os_user text NOT NULL,
  host    text NOT NULL,
  pid     integer NOT NULL,
  since   timestamptz NOT NULL
)`
	readSQL = `SELECT run_id, os_user, host, pid, since FROM ` + Table + ` WHERE cluster = $1`
	// takeSQL inserts the claim, or replaces one that is already this
	// run's (a resume) or that the operator takes over; otherwise it
	// returns no row.
	takeSQL = `INSERT INTO ` + Table + ` AS c (cluster, run_id, os_user, host, pid, since)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (cluster) DO UPDATE SET run_id = EXCLUDED.run_id, os_user = EXCLUDED.os_user,
  host = EXCLUDED.host, pid = EXCLUDED.pid, since = EXCLUDED.since
WHERE c.run_id = $2 OR c.run_id = $7 OR $8
RETURNING run_id`
	releaseSQL = `DELETE FROM ` + Table + ` WHERE cluster = $1 AND run_id = $2`
)

// DefaultTimeout bounds one node's part of a claim operation.
const DefaultTimeout = 5 * time.Second

// Store is the claim of one cluster, kept in its PostgreSQL nodes.
type Store struct {
	Cluster *cluster.Cluster
	// Timeout bounds each node's connection and statements; 0 is
	// DefaultTimeout.
	Timeout time.Duration
}

// nodeClaim is what one node says about the claim.
type nodeClaim struct {
	node    string
	primary bool
	// readOnly is a primary whose configuration makes every transaction
	// read-only by default: a fence whose synchronous_standby_names its
	// manager has replaced since (pg_auto_failover's keeper sets its own
	// when the monitor moves the old primary to wait_primary).
	readOnly bool
	holder   *Holder // nil: no claim on this node
	err      error
	notTable bool // the table does not exist here
	// witness is false for the DCS's copy while PostgreSQL nodes answer:
	// then it does not refuse a run.
	witness bool
}

func (s *Store) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return DefaultTimeout
}

// read asks every node, at once, whether it is a primary and who holds the
// claim there.
func (s *Store) read(ctx context.Context) []nodeClaim {
	return eachNode(s, func(name string) nodeClaim { return s.readNode(ctx, name) })
}

// eachNode asks every node of the cluster at once (a node that does not
// answer costs one timeout, not one each) and returns the answers in the
// cluster's node order.
func eachNode[T any](s *Store, ask func(node string) T) []T {
	names := s.Cluster.NodeOrder()
	out := make([]T, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = ask(name)
		}()
	}
	wg.Wait()
	return out
}

func (s *Store) readNode(ctx context.Context, name string) nodeClaim {
	nc := nodeClaim{node: name}
	ctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	conn, err := pg.Connect(ctx, s.Cluster.Nodes[name].Conninfo, s.timeout())
	if err != nil {
		nc.err = err
		return nc
	}
	defer pg.Release(conn)
	// A primary a switchover has fenced (pg.ApplyFence) acknowledges no
	// commit: it is an old primary on its way out, not a second one.
	// The configured default, not this session's: a claim session sets
	// its own (ownSessionSQL).
	var inRecovery, fenced, readOnly bool
	if err := conn.QueryRow(ctx, `SELECT pg_is_in_recovery(), current_setting('synchronous_standby_names') = $1,
		(SELECT reset_val FROM pg_settings WHERE name = 'default_transaction_read_only') = 'on'`, pg.FenceSyncName).Scan(&inRecovery, &fenced, &readOnly); err != nil {
		nc.err = err
		return nc
	}
	nc.primary, nc.readOnly = !inRecovery && !fenced, readOnly
	h, err := readHolder(ctx, conn, s.Cluster.Name)
	switch {
	case isUndefinedTable(err):
		nc.notTable = true
	case err != nil:
		nc.err = err
	default:
		nc.holder = h
	}
	return nc
}

func readHolder(ctx context.Context, q pg.Querier, clusterName string) (*Holder, error) {
	var h Holder
	err := q.QueryRow(ctx, readSQL, clusterName).Scan(&h.RunID, &h.User, &h.Host, &h.PID, &h.Since)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &h, nil
}

// Read returns the claim on cluster clusterName as one node keeps it: nil
// when no run holds it there (or switchover never claimed anything on this
// cluster). Status shows it beside the local lock.
func Read(ctx context.Context, q pg.Querier, clusterName string) (*Holder, error) {
	h, err := readHolder(ctx, q, clusterName)
	if isUndefinedTable(err) {
		return nil, nil
	}
	return h, err
}

func isUndefinedTable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "42P01" || pe.Code == "3F000")
}

// others returns the first claim held by a run other than mine or
// resuming, as seen on the nodes, in the inventory's order. While exactly
// one node answers as a primary, its row decides: the row is written
// there, and a standby shows a released claim until it has replayed the
// release. With no primary (mid-switchover) or more than one, every node's
// row counts.
func others(claims []nodeClaim, mine, resuming string) (*Holder, string) {
	primaries := 0
	for _, c := range claims {
		if c.err == nil && c.primary && c.node != dcsNode {
			primaries++
		}
	}
	for _, c := range claims {
		if c.node == dcsNode && !c.witness {
			continue
		}
		if primaries == 1 && c.node != dcsNode && !(c.err == nil && c.primary) {
			continue // a standby's copy: the primary's row decides
		}
		if c.holder != nil && c.holder.RunID != mine && (resuming == "" || c.holder.RunID != resuming) {
			return c.holder, c.node
		}
	}
	return nil, ""
}

// dcsNode names the claim's copy in Patroni's DCS among the nodes'.
const dcsNode = "patroni's DCS"

// readAll is read plus, when Patroni manages the cluster, the claim's copy
// in its dynamic configuration. The copy is a witness only while no
// PostgreSQL node answers: each Patroni member serves the configuration it
// last read from the DCS, so a released claim may show there a moment
// longer, and the row in PostgreSQL is the arbiter.
func (s *Store) readAll(ctx context.Context) []nodeClaim {
	claims := s.read(ctx)
	c := s.patroni()
	if c == nil {
		return claims
	}
	dcs := s.readDCS(ctx, c)
	if !allFailed(claims) {
		dcs.witness = false
	}
	return append(claims, dcs)
}

// patroni is the client of the cluster's Patroni, or nil.
func (s *Store) patroni() *patroni.Client {
	m := s.Cluster.Manager
	if m == nil || m.Kind != cluster.ManagerPatroni {
		return nil
	}
	c, err := patroni.New(m)
	if err != nil {
		return nil
	}
	return c
}

func (s *Store) readDCS(ctx context.Context, c *patroni.Client) nodeClaim {
	// Never a primary: the row in PostgreSQL is the arbiter; this copy is
	// for whoever looks at Patroni's configuration.
	nc := nodeClaim{node: dcsNode, err: errNotANode, witness: true}
	ctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	cfg, err := c.Config(ctx)
	if err != nil {
		return nc
	}
	raw, ok := cfg.Raw[patroni.ClaimKey]
	if !ok || raw == nil {
		return nc
	}
	b, _ := json.Marshal(raw)
	var h Holder
	if json.Unmarshal(b, &h) == nil && h.RunID != "" {
		nc.holder = &h
	}
	return nc
}

// errNotANode marks the DCS's entry among the nodes': it is never a primary
// to write the row on, and counts as a node that could not be asked.
var errNotANode = errors.New("not a PostgreSQL node")

// Check reports the claim another run holds on the cluster (a *HeldError),
// changing nothing: what `plan` and a preflight look at. Nodes that cannot
// be asked are left out; checks name them.
func (s *Store) Check(ctx context.Context, mine string) error {
	claims := s.readAll(ctx)
	if h, node := others(claims, mine, ""); h != nil {
		return &HeldError{Cluster: s.Cluster.Name, Holder: *h, Node: node}
	}
	return nil
}

// Take claims the cluster for h. resuming is the id of the run being
// resumed, whose claim is its own; takeOver replaces another run's claim.
// Every node that answers is asked first: a claim on the primary refuses
// (with no primary, a claim seen on any node does). The row is then written on the one primary. A run resumed while
// no node is a primary (the old one stopped, the candidate not promoted
// yet) keeps the claim its rows on the standbys show.
func (s *Store) Take(ctx context.Context, h Holder, resuming string, takeOver bool) error {
	claims := s.readAll(ctx)
	if hold, node := others(claims, h.RunID, resuming); hold != nil && !takeOver {
		return &HeldError{Cluster: s.Cluster.Name, Holder: *hold, Node: node}
	}
	var primaries []nodeClaim
	mineSeen := false
	for _, c := range claims {
		if c.err == nil && c.primary {
			primaries = append(primaries, c)
		}
		if c.holder != nil && (c.holder.RunID == h.RunID || c.holder.RunID == resuming) {
			mineSeen = true
		}
	}
	if len(primaries) > 1 {
		// Of several primaries, one read-only by default beside one that
		// is not is an old primary on its way out (fenced, its manager's
		// synchronous_standby_names since written over the fence's), not
		// a second one.
		writable := slices.DeleteFunc(slices.Clone(primaries), func(c nodeClaim) bool { return c.readOnly })
		if len(writable) == 1 {
			primaries = writable
		}
	}
	switch {
	case len(primaries) > 1:
		names := make([]string, len(primaries))
		for i, p := range primaries {
			names[i] = p.node
		}
		return fmt.Errorf("claim the cluster: more than one node takes writes (%s); nothing was done", strings.Join(names, ", "))
	case len(primaries) == 0 && mineSeen && resuming != "":
		return nil
	case len(primaries) == 0 && allFailed(claims):
		return fmt.Errorf("claim the cluster: %w (%s)", ErrUnreachable, unreachable(claims))
	case len(primaries) == 0:
		return fmt.Errorf("claim the cluster: no node answers as a primary (%s)", unreachable(claims))
	}
	if err := s.write(ctx, primaries[0].node, h, resuming, takeOver); err != nil {
		return err
	}
	return s.writeDCS(ctx, &h)
}

// writeDCS copies the claim into Patroni's configuration (nil: removes
// it), when Patroni manages the cluster.
func (s *Store) writeDCS(ctx context.Context, h *Holder) error {
	c := s.patroni()
	if c == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	var v any
	if h != nil {
		v = h
	}
	if err := c.SetClaim(ctx, v); err != nil {
		return fmt.Errorf("claim the cluster in %s: %w", dcsNode, err)
	}
	return nil
}

// allFailed reports whether no node could be asked.
func allFailed(claims []nodeClaim) bool {
	for _, c := range claims {
		if c.err == nil {
			return false
		}
	}
	return true
}

func unreachable(claims []nodeClaim) string {
	var parts []string
	for _, c := range claims {
		if c.err != nil && !errors.Is(c.err, errNotANode) {
			parts = append(parts, fmt.Sprintf("%s: %v", c.node, c.err))
		}
	}
	if len(parts) == 0 {
		return "every node is in recovery"
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

func (s *Store) write(ctx context.Context, node string, h Holder, resuming string, takeOver bool) error {
	ctx, cancel := context.WithTimeout(ctx, 2*s.timeout())
	defer cancel()
	conn, err := pg.Connect(ctx, s.Cluster.Nodes[node].Conninfo, s.timeout())
	if err != nil {
		return fmt.Errorf("claim the cluster on %s: %w", node, err)
	}
	defer pg.Release(conn)
	if err := ownSession(ctx, conn); err != nil {
		return fmt.Errorf("claim the cluster on %s: %w", node, err)
	}
	// Two runs creating the table at once: one of them may see the other's
	// catalog row as a duplicate; the second try finds the table.
	for try := 0; ; try++ {
		_, err = conn.Exec(ctx, createSQL)
		if err == nil || try == 2 || !isDuplicate(err) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("claim the cluster on %s: create %s: %w", node, Table, err)
	}
	var got string
	err = conn.QueryRow(ctx, takeSQL, s.Cluster.Name, h.RunID, h.User, h.Host, h.PID, h.Since, resuming, takeOver).Scan(&got)
	if errors.Is(err, pgx.ErrNoRows) {
		prev, rerr := readHolder(ctx, conn, s.Cluster.Name)
		if rerr != nil || prev == nil {
			return fmt.Errorf("claim the cluster on %s: another run claimed it at the same moment", node)
		}
		return &HeldError{Cluster: s.Cluster.Name, Holder: *prev, Node: node}
	}
	if err != nil {
		return fmt.Errorf("claim the cluster on %s: %w", node, err)
	}
	return nil
}

func isDuplicate(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "23505" || pe.Code == "42P07" || pe.Code == "42P06")
}

// Release lets go of the claim of run id: the row is deleted on every node
// that takes writes (normally the new primary). A claim that is not there,
// or not this run's, is left alone.
func (s *Store) Release(ctx context.Context, runID string) error {
	claims := s.readAll(ctx)
	for _, c := range claims {
		if c.node == dcsNode && c.holder != nil && c.holder.RunID == runID {
			if err := s.writeDCS(ctx, nil); err != nil {
				return err
			}
		}
	}
	var errs []string
	released := false
	for _, c := range claims {
		if c.err != nil || !c.primary || c.notTable {
			continue
		}
		if err := s.deleteOn(ctx, c.node, runID); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", c.node, err))
			continue
		}
		released = true
	}
	if !released && len(errs) > 0 {
		return fmt.Errorf("release the claim: %s", strings.Join(errs, "; "))
	}
	return nil
}

func (s *Store) deleteOn(ctx context.Context, node, runID string) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	conn, err := pg.Connect(ctx, s.Cluster.Nodes[node].Conninfo, s.timeout())
	if err != nil {
		return err
	}
	defer pg.Release(conn)
	if err := ownSession(ctx, conn); err != nil {
		return err
	}
	_, err = conn.Exec(ctx, releaseSQL, s.Cluster.Name, runID)
	return err
}

// ownSessionSQL makes the claim's session write on a primary that a run
// has fenced (pg.ApplyFence: read-only by default, its commits waiting for
// a synchronous standby that never comes), as a resumed run, or the run
// that finishes another, must: the claim is the runs' own record, not a
// client's write, and its commit does not wait for a synchronous standby.
const ownSessionSQL = "SET default_transaction_read_only = off; SET synchronous_commit = local"

func ownSession(ctx context.Context, conn *pgx.Conn) error {
	if _, err := conn.Exec(ctx, ownSessionSQL); err != nil {
		return fmt.Errorf("%s: %w", ownSessionSQL, err)
	}
	return nil
}
