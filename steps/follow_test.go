package steps

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/cluster"
)

// fakeManager is a manager's view for the follow loop: the node it holds
// the primary, or an error when it cannot be read.
type fakeManager struct {
	primary atomic.Value // string
	fail    atomic.Bool
	looks   atomic.Int32
}

func (m *fakeManager) look(context.Context) (string, error) {
	m.looks.Add(1)
	if m.fail.Load() {
		return "", errors.New("monitor down")
	}
	p, _ := m.primary.Load().(string)
	return p, nil
}

// newFollower is a manager that holds primary the primary, and a follow
// of a switchover to pg2 whose candidate takes writes once writes is set.
func newFollower(primary string) (*fakeManager, *atomic.Bool, *managerFollow[string]) {
	m := &fakeManager{}
	m.primary.Store(primary)
	var writes atomic.Bool
	return m, &writes, follower(m, &writes)
}

// follower is a follow of a switchover to pg2 whose candidate takes writes
// once writes is set.
func follower(m *fakeManager, writes *atomic.Bool) *managerFollow[string] {
	return &managerFollow[string]{
		writable: func(context.Context, *cluster.Target) (bool, string, error) {
			if writes.Load() {
				return true, "out of recovery, read-write", nil
			}
			return false, "in recovery (a standby)", nil
		},
		look: m.look,
		judge: func(p string, ok bool) (bool, error) {
			if p != "" && p != "pg1" && p != "pg2" {
				return false, errors.New("the manager made " + p + " the primary")
			}
			return ok && p == "pg2", nil
		},
	}
}

func TestManagerFollowSettles(t *testing.T) {
	m, writes, f := newFollower("pg1")
	go func() {
		time.Sleep(150 * time.Millisecond)
		m.primary.Store("pg2")
		writes.Store(true)
	}()
	start := time.Now()
	end, err := f.run(context.Background(), nil, start, start.Add(10*time.Second))
	if err != nil || end != nil {
		t.Fatalf("run = %+v, %v; want settled", end, err)
	}
	// While the candidate does not take writes the manager is read every
	// managerPoll, not at every tick.
	if n := m.looks.Load(); n > int32(time.Since(start)/managerPoll)+2 {
		t.Errorf("the manager was read %d times in %s; want about one every %s", n, time.Since(start), managerPoll)
	}
}

func TestManagerFollowAnotherWay(t *testing.T) {
	_, _, f := newFollower("pg3")
	start := time.Now()
	end, err := f.run(context.Background(), nil, start, start.Add(10*time.Second))
	if err == nil || !strings.Contains(err.Error(), "made pg3 the primary") || end != nil {
		t.Fatalf("run = %+v, %v; want the judge's error", end, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the judge's error came after %s; want it at the first view", d)
	}
}

func TestManagerFollowDeadline(t *testing.T) {
	m, _, f := newFollower("pg1")
	go func() {
		time.Sleep(150 * time.Millisecond)
		m.fail.Store(true)
	}()
	start := time.Now()
	end, err := f.run(context.Background(), nil, start, start.Add(400*time.Millisecond))
	if err != nil || end == nil {
		t.Fatalf("run = %+v, %v; want it to end at the deadline", end, err)
	}
	if end.Cut != nil || !end.Seen || end.Last != "pg1" || end.LastErr == nil || end.Postgres != "in recovery (a standby)" {
		t.Errorf("end = %+v; want the deadline, pg1 seen, then the manager unreadable, and what PostgreSQL said", end)
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Errorf("ended after %s, before the deadline", d)
	}
}

func TestManagerFollowCutOff(t *testing.T) {
	_, _, f := newFollower("pg1")
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(150 * time.Millisecond)
		cancel()
	}()
	start := time.Now()
	end, err := f.run(ctx, nil, start, start.Add(10*time.Second))
	if err != nil || end == nil || !errors.Is(end.Cut, context.Canceled) {
		t.Fatalf("run = %+v, %v; want it cut off", end, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cut off after %s; want at once", d)
	}
}

func TestManagerFollowWakeAndQuiet(t *testing.T) {
	m, _, f := newFollower("pg1")
	f.quiet = time.Hour
	var wakes atomic.Int32
	f.wake = func() error {
		if wakes.Add(1) == 5 {
			return errors.New("refused")
		}
		return nil
	}
	start := time.Now()
	end, err := f.run(context.Background(), nil, start, start.Add(10*time.Second))
	if err == nil || err.Error() != "refused" || end != nil {
		t.Fatalf("run = %+v, %v; want wake's error", end, err)
	}
	if n := m.looks.Load(); n != 0 {
		t.Errorf("the manager was read %d times while quiet; want none", n)
	}
}
