package sandbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// StartIndependent initdbs and starts a server of a cluster of its own (its
// own system identifier) in DIR/name, on a free port, beside the sandbox:
// what an inventory that names another cluster's data directory by mistake
// points at. It is not one of the sandbox's nodes; StopIndependent stops it,
// and Down removes its directory with the rest.
func (s *Sandbox) StartIndependent(ctx context.Context, name string) (Node, error) {
	port, err := FreePortBase(1)
	if err != nil {
		return Node{}, err
	}
	n := Node{Name: name, Port: port, DataDir: filepath.Join(s.Dir, name)}
	if _, err := os.Stat(n.DataDir); err == nil {
		return Node{}, fmt.Errorf("%s exists already", n.DataDir)
	}
	if err := s.initPrimary(ctx, n); err != nil {
		return Node{}, err
	}
	if err := s.start(ctx, n); err != nil {
		return Node{}, err
	}
	return n, nil
}

// StopIndependent stops a server StartIndependent started, by its PID (a
// fast shutdown, SIGKILL after limit).
func (s *Sandbox) StopIndependent(ctx context.Context, n Node, limit time.Duration) error {
	pid := s.pidOf(n)
	if pid == 0 {
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGINT)
	return waitGone(ctx, map[string]int{n.Name: pid}, limit)
}
