package claim

// The record a fleet keeps in each cluster it switched. A fleet run is many
// ordinary runs, and two fleet runs of one fleet (bastions splitting it, or
// a second started by mistake) may name the same cluster. The cluster's
// claim keeps them off it at the same time; this record keeps the second
// from switching it again after the first is done. The run writes it
// itself, before it releases its claim, and a run of the same fleet reads
// it just after taking the claim: both under the claim, so no second run
// can slip in between a done run and its record (see runbook.Options.Fleet).

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/internal/pg"
)

// Done says that a run of a fleet switched a cluster.
type Done struct {
	// Fleet is the fleet's key (its name, and its window's opening).
	Fleet string    `json:"fleet"`
	RunID string    `json:"run_id"`
	User  string    `json:"user"`
	Host  string    `json:"host"`
	At    time.Time `json:"at"`
}

// String says who switched the cluster, in the words of a skip.
func (d Done) String() string {
	return fmt.Sprintf("run %s by %s@%s at %s", d.RunID, d.User, d.Host, d.At.UTC().Format(time.RFC3339))
}

// DoneTable is where the records live, beside the claim.
const DoneTable = Schema + ".fleet_done"

const (
	createDoneSQL = `CREATE SCHEMA IF NOT EXISTS ` + Schema + `;
CREATE TABLE IF NOT EXISTS ` + DoneTable + ` (
  fleet   text NOT NULL,
  cluster text NOT NULL,
  run_id  text NOT NULL,
  os_user text NOT NULL,
  host    text NOT NULL,
  at      timestamptz NOT NULL,
  PRIMARY KEY (fleet, cluster)
)`
	readDoneSQL = `SELECT fleet, run_id, os_user, host, at FROM ` + DoneTable + ` WHERE fleet = $1 AND cluster = $2`
	// The first record stays: the run that switched the cluster first is
	// the one that did.
	markDoneSQL = `INSERT INTO ` + DoneTable + ` (fleet, cluster, run_id, os_user, host, at)
VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (fleet, cluster) DO NOTHING`
)

// FleetDone returns the record that fleet switched the cluster, or nil.
// Every node is asked (the record replicates, and is never removed): a
// copy on any node counts. It fails only when no node answers.
func (s *Store) FleetDone(ctx context.Context, fleet string) (*Done, error) {
	names := s.Cluster.NodeOrder()
	type answer struct {
		d   *Done
		err error
	}
	answers := eachNode(s, func(name string) answer {
		d, err := s.readDone(ctx, name, fleet)
		return answer{d, err}
	})
	var errs []string
	answered := false
	for i, a := range answers {
		if a.err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", names[i], a.err))
			continue
		}
		answered = true
		if a.d != nil {
			return a.d, nil
		}
	}
	if !answered {
		return nil, fmt.Errorf("read fleet %s's record in cluster %q: %s", fleet, s.Cluster.Name, strings.Join(errs, "; "))
	}
	return nil, nil
}

func (s *Store) readDone(ctx context.Context, node, fleet string) (*Done, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	conn, err := pg.Connect(ctx, s.Cluster.Nodes[node].Conninfo, s.timeout())
	if err != nil {
		return nil, err
	}
	defer pg.Release(conn)
	var d Done
	err = conn.QueryRow(ctx, readDoneSQL, fleet, s.Cluster.Name).Scan(&d.Fleet, &d.RunID, &d.User, &d.Host, &d.At)
	switch {
	case errors.Is(err, pgx.ErrNoRows), isUndefinedTable(err):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return &d, nil
}

// MarkFleetDone records on the one primary that d.Fleet switched the
// cluster. A record already there (the same fleet, an earlier run) stays.
func (s *Store) MarkFleetDone(ctx context.Context, d Done) error {
	var primary string
	for _, c := range s.read(ctx) {
		if c.err == nil && c.primary && !c.readOnly {
			if primary != "" {
				return fmt.Errorf("record fleet %s in cluster %q: more than one node takes writes (%s, %s)", d.Fleet, s.Cluster.Name, primary, c.node)
			}
			primary = c.node
		}
	}
	if primary == "" {
		return fmt.Errorf("record fleet %s in cluster %q: no node answers as a primary", d.Fleet, s.Cluster.Name)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*s.timeout())
	defer cancel()
	conn, err := pg.Connect(ctx, s.Cluster.Nodes[primary].Conninfo, s.timeout())
	if err != nil {
		return fmt.Errorf("record fleet %s on %s: %w", d.Fleet, primary, err)
	}
	defer pg.Release(conn)
	if err := ownSession(ctx, conn); err != nil {
		return fmt.Errorf("record fleet %s on %s: %w", d.Fleet, primary, err)
	}
	for try := 0; ; try++ {
		_, err = conn.Exec(ctx, createDoneSQL)
		if err == nil || try == 2 || !isDuplicate(err) {
			break
		}
	}
	if err == nil {
		_, err = conn.Exec(ctx, markDoneSQL, d.Fleet, s.Cluster.Name, d.RunID, d.User, d.Host, d.At)
	}
	if err != nil {
		return fmt.Errorf("record fleet %s on %s: %w", d.Fleet, primary, err)
	}
	return nil
}
