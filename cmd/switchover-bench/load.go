package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/switchover/switchover/internal/pg"
)

// modeLoad is the pooler mode while pgbench keeps loadClients clients
// busy through the same PgBouncer: the window the canary measures then is
// the stall a loaded application feels.
const modeLoad = "under load"

// loadClients is how many pgbench clients write through the pooler.
const loadClients = 8

// loadInitTimeout bounds pgbench's initialization (scale 1).
const loadInitTimeout = 2 * time.Minute

// loadFigures is what pgbench did across the loaded switchovers.
type loadFigures struct {
	Clients int `json:"clients"`
	// Transactions is how many pgbench committed (its history table's
	// rows) while the switchovers ran.
	Transactions int64 `json:"transactions"`
	// Aborted is how many of its clients pgbench gave up on (an error
	// ends a pgbench client): 0 when no client saw an error.
	Aborted int `json:"aborted_clients"`
}

// underLoad runs Runs round trips pg1 -> pg2 -> pg1 of the pooler mode
// while pgbench (TPC-B like, loadClients clients) writes through the same
// PgBouncer, and says what pgbench went through.
func (b *bench) underLoad(ctx context.Context) ([]*switchover, *loadFigures, error) {
	pgbench := filepath.Join(b.sb.BinDir, "pgbench")
	conninfo := b.sb.ClientConninfo()
	ictx, cancel := context.WithTimeout(ctx, loadInitTimeout)
	out, err := exec.CommandContext(ictx, pgbench, "-i", "-q", "-s", "1", conninfo).CombinedOutput()
	cancel()
	if err != nil {
		return nil, nil, fmt.Errorf("pgbench -i: %w: %s", err, lastLine(string(out)))
	}
	before, err := historyRows(ctx, conninfo)
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(b.out, "   %s: pgbench, %d clients through PgBouncer, for the whole mode\n", modeLoad, loadClients)
	var stderr bytes.Buffer
	cmd := exec.Command(pgbench, "-n", "-c", fmt.Sprint(loadClients), "-j", "2", "-T", "86400", conninfo)
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("pgbench: %w", err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
		}
	}
	defer stop()
	var rows []*switchover
	for i := 1; i <= b.o.Runs; i++ {
		for _, d := range [][2]string{{"pg1", "pg2"}, {"pg2", "pg1"}} {
			s, err := b.switchover(ctx, b.rb, modeLoad, b.sb.Inventory(), i, d[0], d[1])
			if err != nil {
				return rows, nil, err
			}
			s.print(b.out)
			rows = append(rows, s)
		}
	}
	stop()
	after, err := historyRows(ctx, conninfo)
	if err != nil {
		return rows, nil, err
	}
	f := &loadFigures{Clients: loadClients, Transactions: after - before,
		Aborted: strings.Count(stderr.String(), "aborted in command")}
	return rows, f, nil
}

// historyRows counts pgbench's history table: one row a transaction.
func historyRows(ctx context.Context, conninfo string) (int64, error) {
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pg.ConnectPooled(qctx, conninfo)
	if err != nil {
		return 0, fmt.Errorf("counting pgbench's transactions: %w", err)
	}
	defer conn.Close(context.Background())
	var n int64
	err = conn.QueryRow(qctx, "SELECT count(*) FROM pgbench_history").Scan(&n)
	return n, err
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
