package sandboxtest

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
)

// EndArchiveCommand ends whatever archive_command a node's archiver is
// running (a test's hung `sleep 3600`, say), by the pids of the archiver's
// descendants, so that the node can stop. Set a command that returns first,
// or the archiver, restarted, runs the hung one again.
func EndArchiveCommand(t testing.TB, sb *sandbox.Sandbox, node string) {
	t.Helper()
	n, ok := sb.Node(node)
	if !ok {
		t.Fatalf("no node %s in the sandbox", node)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pg.Connect(ctx, sb.Conninfo(n, "postgres"), 5*time.Second)
	if err != nil {
		t.Errorf("connect %s to find its archiver: %v", node, err)
		return
	}
	defer pg.Release(conn)
	var archiver int
	if err := conn.QueryRow(ctx, "SELECT coalesce((SELECT pid FROM pg_stat_activity WHERE backend_type = 'archiver'), 0)").Scan(&archiver); err != nil {
		t.Errorf("find the archiver of %s: %v", node, err)
		return
	}
	if archiver == 0 {
		return
	}
	for _, pid := range descendants(archiver) {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
			t.Errorf("end archive_command process %d of %s: %v", pid, node, err)
		}
	}
}

// descendants lists the processes below pid, deepest last.
func descendants(pid int) []int {
	children := map[int][]int{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(s[i+1:])
		if len(fields) < 2 {
			continue
		}
		ppid, err1 := strconv.Atoi(fields[1])
		child, err2 := strconv.Atoi(filepath.Base(filepath.Dir(f)))
		if err1 == nil && err2 == nil {
			children[ppid] = append(children[ppid], child)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// Freeze stops a process and every process below it (SIGSTOP), as a hung
// host would leave them: connections to it are accepted by the kernel and
// never answered. The returned thaw continues them (SIGCONT); it runs when
// t ends too, so a failed test leaves nothing stopped.
func Freeze(t testing.TB, pid int) (thaw func()) {
	t.Helper()
	return FreezePIDs(t, append([]int{pid}, descendants(pid)...)...)
}

// FreezePIDs stops exactly the processes pids (SIGSTOP), none of their
// children, until thaw or the end of the test.
func FreezePIDs(t testing.TB, pids ...int) (thaw func()) {
	t.Helper()
	for _, p := range pids {
		if err := syscall.Kill(p, syscall.SIGSTOP); err != nil && err != syscall.ESRCH {
			t.Fatalf("freeze process %d: %v", p, err)
		}
	}
	var once sync.Once
	thaw = func() {
		once.Do(func() {
			for _, p := range pids {
				_ = syscall.Kill(p, syscall.SIGCONT)
			}
		})
	}
	t.Cleanup(thaw)
	return thaw
}
