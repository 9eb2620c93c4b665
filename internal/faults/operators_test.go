package faults

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/canary"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/internal/testbin"
)

// operator is who starts a run: an OS user with a journal directory of
// its own, as two DBAs on two bastion hosts, or two users on one, are.
type operator struct {
	name string
	cred *syscall.Credential // nil: this process's user
}

// TestTwoOperatorsAtOnce starts two runs of the switchover, about 100 ms
// apart, from two journal directories and (as root) two OS users, each
// promoting a different standby. The claim kept in the cluster lets exactly
// one through; the other is refused with exit 6 naming the holder, before
// it changes anything. Never two writable primaries, nothing lost.
func TestTwoOperatorsAtOnce(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	bin := testbin.Build(t)
	ops := []operator{{name: "this user"}, {name: "this user, another journal"}}
	if os.Geteuid() == 0 && sb.RunAs != "" {
		u, err := user.Lookup(sb.RunAs)
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		ops[1] = operator{name: "user " + sb.RunAs, cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		// The other user runs the same binary and reads the inventory.
		if err := os.Chmod(filepath.Dir(bin), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for round := 0; round < 3; round++ {
		t.Run(fmt.Sprintf("round %d", round), func(t *testing.T) {
			before, err := waitHealthy(t, sb)
			if err != nil {
				t.Fatalf("before the round: %v", err)
			}
			primary := before.primary
			var cands []string
			for _, n := range sb.Nodes {
				if n.Name != primary {
					cands = append(cands, n.Name)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), pollTimeout)
			w, err := canary.Start(ctx, canary.Options{Conninfo: sb.ClientConninfo(), Table: fmt.Sprintf("faults_operators_%d", round),
				RunID: fmt.Sprintf("operators-%d-%d", round, time.Now().UnixNano())})
			cancel()
			if err != nil {
				t.Fatalf("independent writer: %v", err)
			}
			t.Cleanup(w.Close)
			smp := sandboxtest.StartSampler(sb)
			t.Cleanup(func() { smp.Finish() })

			first := round % 2 // who starts first alternates
			procs := make([]*exec.Cmd, 2)
			outs := make([]*testbin.SyncBuffer, 2)
			for k := 0; k < 2; k++ {
				i := (first + k) % 2
				op := ops[i]
				// Not t.TempDir(): its parent is private to this user.
				dir, err := os.MkdirTemp("", "switchover-operators-")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.RemoveAll(dir) })
				if op.cred != nil {
					if err := os.Chown(dir, int(op.cred.Uid), int(op.cred.Gid)); err != nil {
						t.Fatal(err)
					}
				}
				cmd := exec.Command(bin, "run", playbook, "-i", sb.Inventory(), "--yes", "--journal-dir", filepath.Join(dir, "journal"),
					"--var", "primary="+primary, "--var", "candidate="+cands[i])
				cmd.Dir = dir
				cmd.Env = append(os.Environ(), "HOME="+dir, "NO_COLOR=1")
				outs[i] = &testbin.SyncBuffer{}
				cmd.Stdout, cmd.Stderr = outs[i], outs[i]
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: op.cred}
				cmd.WaitDelay = 2 * time.Second
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				procs[i] = cmd
				t.Cleanup(func() { _ = cmd.Process.Kill() })
				if k == 0 {
					time.Sleep(100 * time.Millisecond)
				}
			}
			codes := make([]int, 2)
			for i, cmd := range procs {
				done := make(chan error, 1)
				go func() { done <- cmd.Wait() }()
				select {
				case <-done:
				case <-time.After(cmdTimeout):
					_ = cmd.Process.Kill()
					t.Fatalf("%s: the run did not end within %s:\n%s", ops[i].name, cmdTimeout, outs[i])
				}
				codes[i] = cmd.ProcessState.ExitCode()
				t.Logf("%s (candidate %s): exit %d", ops[i].name, cands[i], codes[i])
			}
			sorted := append([]int(nil), codes...)
			sort.Ints(sorted)
			if sorted[0] != 0 || sorted[1] != 6 {
				t.Fatalf("exits %v: want one run done (0) and one refused as claimed (6)\n--- %s:\n%s\n--- %s:\n%s",
					codes, ops[0].name, outs[0], ops[1].name, outs[1])
			}
			winner, loser := 0, 1
			if codes[0] == 6 {
				winner, loser = 1, 0
			}
			refusal := outs[loser].String()
			if !strings.Contains(refusal, "claimed by run") || !strings.Contains(refusal, "--take-over") {
				t.Errorf("the refused run does not name the holder and the way out:\n%s", refusal)
			}
			if strings.Contains(refusal, "[1/") {
				t.Errorf("the refused run started steps:\n%s", refusal)
			}
			after, err := waitHealthy(t, sb)
			if err != nil {
				t.Fatalf("after the round: %v", err)
			}
			if after.primary != cands[winner] {
				t.Errorf("after the round the primary is %s, want %s (the run that went on)", after.primary, cands[winner])
			}
			ctx, cancel = context.WithTimeout(context.Background(), 2*pollTimeout)
			rep, err := w.Stop(ctx)
			cancel()
			if err != nil {
				t.Errorf("independent writer: %v", err)
			} else if len(rep.Lost) > 0 {
				t.Errorf("%d acknowledged commits lost", len(rep.Lost))
			}
			seen := smp.Finish()
			seen.CheckKept(t, sb, after.primary)
		})
	}
}
