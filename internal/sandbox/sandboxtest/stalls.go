package sandboxtest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
)

// StallWatch is an independent writer through PgBouncer that commits one
// row after another and measures the longest a commit took: what clients
// felt of a run.
type StallWatch struct {
	stop, done chan struct{}
	mu         sync.Mutex
	commits    int
	longest    time.Duration
	errs       []string
}

// WatchStalls starts the writer; Check stops it.
func WatchStalls(t testing.TB, sb *sandbox.Sandbox) *StallWatch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pg.ConnectPooled(ctx, sb.ClientConninfo())
	if err != nil {
		t.Fatalf("writer: connect through the pooler: %v", err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS gate_writes (id bigserial PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())"); err != nil {
		t.Fatalf("writer: %v", err)
	}
	w := &StallWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer conn.Close(context.Background())
		for {
			start := time.Now()
			cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_, err := conn.Exec(cctx, "INSERT INTO gate_writes DEFAULT VALUES")
			cancel()
			took := time.Since(start)
			w.mu.Lock()
			if err != nil {
				w.errs = append(w.errs, err.Error())
			} else {
				w.commits++
			}
			w.longest = max(w.longest, took)
			w.mu.Unlock()
			select {
			case <-w.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return w
}

// Check stops the writer and fails the test if a commit failed or took
// longer than limit.
func (w *StallWatch) Check(t testing.TB, limit time.Duration) {
	t.Helper()
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.errs) > 0 {
		t.Errorf("the writer through PgBouncer failed %d times: %s", len(w.errs), w.errs[0])
	}
	if w.commits < 10 {
		t.Errorf("the writer through PgBouncer committed only %d rows", w.commits)
	}
	if w.longest > limit {
		t.Errorf("the writer through PgBouncer stalled %s, want under %s", w.longest, limit)
	}
	t.Logf("%d commits through PgBouncer, the longest took %s", w.commits, w.longest.Round(time.Millisecond))
}
