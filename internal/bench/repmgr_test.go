package bench

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"
)

// TestRepmgrBench runs the repmgr comparison alone, with
// SWITCHOVER_BENCH_REPMGR=N (N round trips per way); it takes minutes.
func TestRepmgrBench(t *testing.T) {
	runs, _ := strconv.Atoi(os.Getenv("SWITCHOVER_BENCH_REPMGR"))
	if runs < 1 {
		t.Skip("set SWITCHOVER_BENCH_REPMGR=N to run the repmgr comparison, N round trips per way")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if err := RunRepmgr(ctx, Options{Runs: runs, Out: os.Stdout, Log: testLog{t}}); err != nil {
		t.Fatal(err)
	}
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) { l.t.Log(string(p)); return len(p), nil }
