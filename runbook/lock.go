package runbook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"

	"github.com/switchover/switchover/internal/claim"
)

// Holder is who holds a cluster's lock: the same record as the claim kept
// in the cluster.
type Holder = claim.Holder

// ClusterClaim is a run's claim kept in the cluster itself (internal/claim),
// which every operator's run sees whatever host, user or journal directory
// it runs from; the lock in the journal directory is the first line, this
// is the one that holds across machines.
type ClusterClaim interface {
	// Check returns a *claim.HeldError when another run than mine holds
	// the cluster; it changes nothing.
	Check(ctx context.Context, mine string) error
	// Take claims the cluster for h (resuming: the run being resumed,
	// whose claim is its own; takeOver: replace another run's claim).
	Take(ctx context.Context, h Holder, resuming string, takeOver bool) error
	// Release lets go of run id's claim.
	Release(ctx context.Context, runID string) error
}

// claimTimeout bounds taking, checking or releasing the cluster's claim.
const claimTimeout = 15 * time.Second

// checkHeld refuses a run when another run's claim shows on a node (a
// *LockedError); that a node cannot be asked is left to the run's checks.
func (e *engine) checkHeld(ctx context.Context) error {
	if e.o.Claim == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, claimTimeout)
	defer cancel()
	var held *claim.HeldError
	if err := e.o.Claim.Check(ctx, e.runID); errors.As(err, &held) {
		if e.o.TakeOver {
			// Taken over at the first action, when this run writes its
			// own claim in its place; a dry run only says so.
			verb := "takes it over before its first action"
			if e.o.DryRun {
				verb = "would take it over (--take-over)"
			}
			e.takeOverNote = fmt.Sprintf("cluster %q is claimed by %s (seen on %s); this run %s", e.p.LockName, held.Holder, held.Node, verb)
			return nil
		}
		return &LockedError{Cluster: e.p.LockName, Holder: held.Holder, SeenOn: held.Node}
	}
	return nil
}

// takeClaim claims the cluster for this run. Another run's claim is a
// *LockedError. When final is false (the run is starting), a claim that
// cannot be written yet (no node answers, or none as a primary) is left
// for the run's own checks to explain and is tried again before the first
// action; when final is true (that first action is next), it refuses the
// step, except that a cluster where no node answers at all keeps only the
// local lock, said in a note.
func (e *engine) takeClaim(ctx context.Context, final bool) error {
	if e.o.Claim == nil || e.claimed {
		return nil
	}
	h := Holder{RunID: e.runID, User: e.o.Identity.User, Host: e.o.Identity.Host, PID: os.Getpid(), Since: e.o.now()}
	ctx, cancel := context.WithTimeout(ctx, claimTimeout)
	defer cancel()
	err := e.o.Claim.Take(ctx, h, e.resuming, e.o.TakeOver)
	var held *claim.HeldError
	switch {
	case err == nil:
		e.claimed = true
		return e.fleetDone(ctx)
	case errors.As(err, &held):
		return &LockedError{Cluster: e.p.LockName, Holder: held.Holder, SeenOn: held.Node}
	case !final:
		return nil
	case errors.Is(err, claim.ErrUnreachable):
		_ = e.emit(journal.Event{Type: journal.EventNote, Message: fmt.Sprintf("%v: only this machine's lock holds the cluster for this run", err)})
		e.claimed = true // nothing to take again; nothing to release
		return nil
	}
	return fmt.Errorf("%w: %v; nothing was done", ErrPrecondition, err)
}

// releaseClaim lets go of the run's claim in the cluster, on a deadline of
// its own (the run's context may be what ended).
func (e *engine) releaseClaim(ctx context.Context) {
	if e.o.Claim == nil || !e.claimed {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), claimTimeout)
	defer cancel()
	if err := e.o.Claim.Release(ctx, e.runID); err != nil {
		_ = e.emit(journal.Event{Type: journal.EventNote, Message: fmt.Sprintf("the run's claim on the cluster could not be released: %v; the next run must be started with --take-over", err)})
	}
}

// Identity is who runs switchover, as approvals and locks record it.
type Identity struct {
	User string
	Host string
}

// CurrentIdentity returns the OS user and host name of this process.
func CurrentIdentity() Identity {
	id := Identity{User: os.Getenv("USER"), Host: "unknown"}
	if u, err := user.Current(); err == nil {
		id.User = u.Username
	}
	if h, err := os.Hostname(); err == nil {
		id.Host = h
	}
	if id.User == "" {
		id.User = fmt.Sprintf("uid %d", os.Getuid())
	}
	return id
}

// clusterLock enforces one run per cluster. The kernel's flock says whether
// a live process holds it (and lets go when that process dies, even by
// SIGKILL); the file's content says which run took it, and stays until the
// run finishes, so a run that was killed or suspended is not silently
// overtaken by a new one.
type clusterLock struct {
	f *os.File
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

func lockPath(dir, name string) string {
	return filepath.Join(dir, "locks", unsafeName.ReplaceAllString(name, "_")+".lock")
}

// acquireLock takes the lock of cluster name for h. resuming is the id of
// the run being resumed, whose unfinished claim is its own; takeOver lets a
// new run take the claim of an unfinished one.
func acquireLock(dir, name string, h Holder, resuming string, takeOver bool) (*clusterLock, error) {
	path := lockPath(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("lock directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := flockReleased(f, resuming); err != nil {
		prev, _ := readHolder(f)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &LockedError{Cluster: name, Holder: prev}
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	prev, err := readHolder(f)
	if err == nil && prev.RunID != "" && prev.RunID != resuming && !takeOver {
		f.Close()
		return nil, &LockedError{Cluster: name, Holder: prev, Stale: true}
	}
	l := &clusterLock{f: f}
	if err := l.write(h); err != nil {
		f.Close()
		return nil, err
	}
	return l, nil
}

// lockSettle bounds how long a lock that is on its way out may still be
// held. A run that ends empties the file (or, unfinished, leaves its
// name in it for resume), then closes it; a process forked at that moment
// by this one (an ssh, a guard) holds the same open file, and so the
// lock, until it has exec'd.
const lockSettle = 2 * time.Second

// flockReleased takes f's lock without waiting, except while the lock is
// on its way out: the file names no run, or a run of this very process
// (which has ended, or is the one being resumed): then it is tried again
// until lockSettle. A lock another process holds is refused at once.
func flockReleased(f *os.File, resuming string) error {
	deadline := time.Now().Add(lockSettle)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			return err
		}
		h, rerr := readHolder(f)
		if rerr != nil || (h.RunID != "" && h.PID != os.Getpid() && (resuming == "" || h.RunID != resuming)) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readHolder(f *os.File) (Holder, error) {
	var h Holder
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return h, err
	}
	b, err := io.ReadAll(f)
	if err != nil || len(b) == 0 {
		return h, err
	}
	return h, json.Unmarshal(b, &h)
}

func (l *clusterLock) write(h Holder) error {
	b, _ := json.Marshal(h)
	if err := l.f.Truncate(0); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	if _, err := l.f.WriteAt(b, 0); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	return l.f.Sync()
}

// release lets go of the lock. A finished run clears its claim; an
// unfinished one leaves it for resume.
func (l *clusterLock) release(finished bool) {
	if l == nil {
		return
	}
	if finished {
		_ = l.f.Truncate(0)
		_ = l.f.Sync()
	}
	_ = l.f.Close()
}

// lockHeld reports whether a live process holds the lock of cluster name,
// and who.
func lockHeld(dir, name string) (Holder, bool) {
	f, err := os.OpenFile(lockPath(dir, name), os.O_RDONLY, 0)
	if err != nil {
		return Holder{}, false
	}
	defer f.Close()
	h, _ := readHolder(f)
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return h, true
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return h, false
}

// ClaimInCluster is the claim kept in the PostgreSQL nodes of p's cluster,
// or nil when the plan names none.
func ClaimInCluster(p *spec.Plan) ClusterClaim {
	if p == nil || p.Cluster == nil || len(p.Cluster.Nodes) == 0 {
		return nil
	}
	return &claim.Store{Cluster: p.Cluster}
}

// LocalLock is a cluster's lock in a journal directory as `switchover
// status` shows it: the run that took it, and whether its process still
// holds it.
type LocalLock struct {
	Holder
	// Live is true while the run's process holds the lock; false for a
	// run that was killed or suspended and never finished (resume it, or
	// start a new one with --take-over).
	Live bool `json:"live"`
}

// ReadLocalLock returns who holds cluster name's lock in journal directory
// dir, or nil when no run holds it there. It takes nothing.
func ReadLocalLock(dir, name string) *LocalLock {
	h, live := lockHeld(dir, name)
	if h.RunID == "" {
		return nil
	}
	return &LocalLock{Holder: h, Live: live}
}
