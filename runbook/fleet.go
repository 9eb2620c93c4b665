// A run that is part of a fleet (Options.Fleet): the record, kept in the
// cluster, that the fleet switched it. The record is read just after the
// run takes its claim and written just before the run gives it up, so
// that of two runs of one fleet on one cluster, the second is refused
// whether it starts while the first holds the cluster or after it is
// done (internal/claim keeps the record beside the claim).

package runbook

import (
	"context"
	"fmt"

	"github.com/switchover/switchover/internal/claim"
	"github.com/switchover/switchover/runbook/journal"
)

// FleetRecords is what a ClusterClaim keeps of the fleets that switched
// the cluster; the claim kept in PostgreSQL (claim.Store) does.
type FleetRecords interface {
	FleetDone(ctx context.Context, fleet string) (*claim.Done, error)
	MarkFleetDone(ctx context.Context, d claim.Done) error
}

var _ FleetRecords = (*claim.Store)(nil)

// FleetDoneError refuses a run of a fleet on a cluster that fleet switched
// already. It is ErrLocked (exit 6): another run has the cluster, for good.
type FleetDoneError struct {
	Cluster string
	Done    claim.Done
}

func (e *FleetDoneError) Error() string {
	return fmt.Sprintf("cluster %q was switched already by fleet %s (%s); nothing was done", e.Cluster, e.Done.Fleet, e.Done)
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *FleetDoneError) Is(target error) bool { return target == ErrLocked }

// fleetDone refuses the run, letting go of the claim it has just taken,
// when its fleet switched the cluster already (by another run than this
// one, resumed).
func (e *engine) fleetDone(ctx context.Context) error {
	rec, ok := e.o.Claim.(FleetRecords)
	if e.o.Fleet == "" || !ok {
		return nil
	}
	d, err := rec.FleetDone(ctx, e.o.Fleet)
	switch {
	case err != nil:
		err = fmt.Errorf("%w: %v: whether fleet %s switched the cluster already is unknown; nothing was done", ErrPrecondition, err, e.o.Fleet)
	case d != nil && d.RunID != e.runID:
		err = &FleetDoneError{Cluster: e.p.LockName, Done: *d}
	default:
		return nil
	}
	e.releaseClaim(ctx)
	e.claimed = false
	return err
}

// recordFleetDone records in the cluster that the run's fleet switched
// it, while the run still holds its claim. A record that cannot be
// written is said in a note: the run is done all the same, but another
// run of the fleet would not know.
func (e *engine) recordFleetDone(ctx context.Context) {
	rec, ok := e.o.Claim.(FleetRecords)
	if e.o.Fleet == "" || !ok || e.o.DryRun {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), claimTimeout)
	defer cancel()
	d := claim.Done{Fleet: e.o.Fleet, RunID: e.runID, User: e.o.Identity.User, Host: e.o.Identity.Host, At: e.o.now()}
	msg := fmt.Sprintf("recorded in the cluster: fleet %s switched it (run %s)", e.o.Fleet, e.runID)
	if err := rec.MarkFleetDone(ctx, d); err != nil {
		msg = fmt.Sprintf("%v: another run of fleet %s would not know that this run switched the cluster", err, e.o.Fleet)
	}
	_ = e.emit(journal.Event{Type: journal.EventNote, Message: msg})
}
