package runbook

import (
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
)

// Holder is who holds a cluster's lock.
type Holder struct {
	RunID string    `json:"run_id"`
	User  string    `json:"user"`
	Host  string    `json:"host"`
	PID   int       `json:"pid"`
	Since time.Time `json:"since"`
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
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
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
