package steps

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestPollSaysWhatTheLastFinishedProbeSaw: a probe cut short by the
// deadline (its query timed out with it) does not replace what the probe
// before it saw, so that the error says what the node showed.
func TestPollSaysWhatTheLastFinishedProbeSaw(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	calls := 0
	err := poll(ctx, 10*time.Millisecond, func(ctx context.Context) (bool, string, error) {
		calls++
		if calls == 1 {
			return false, "pg3 does not stream from 127.0.0.1:1 yet: no WAL receiver", nil
		}
		<-ctx.Done()
		return false, "inspecting pg3 failed: " + ctx.Err().Error(), nil
	})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "pg3 does not stream from 127.0.0.1:1 yet") {
		t.Fatalf("poll = %v, want the deadline with what the node showed before it", err)
	}
	// With nothing seen before, the cut probe's word is all there is.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	err = poll(ctx2, 10*time.Millisecond, func(ctx context.Context) (bool, string, error) {
		<-ctx.Done()
		return false, "pg3 does not answer", nil
	})
	if err == nil || !strings.Contains(err.Error(), "pg3 does not answer") {
		t.Fatalf("poll = %v, want what the only probe saw", err)
	}
}
