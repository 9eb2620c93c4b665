package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/transport"
)

// modeSSH is the mode on hosts of their own: every node and PgBouncer in a
// network namespace with its own address and sshd, every command of the
// playbook run over ssh, the canary writing through PgBouncer from the
// bastion. It is the same switchover as the pooler mode, reached the way a
// real cluster is, so the two windows side by side say what ssh costs.
const modeSSH = "ssh"

// modeSSHSessions is the ssh mode with every command a session of its own
// (SWITCHOVER_SSH_SHELLS=off), as before one shell per host: the same
// sandbox, alternated with modeSSH in the same run.
const modeSSHSessions = "ssh-sessions"

// sshSkipped says why the ssh mode cannot run here, "" when it can: a
// multi-host sandbox needs root (network namespaces, a bridge, an sshd per
// host).
func sshSkipped() string {
	if os.Geteuid() != 0 {
		return fmt.Sprintf("not root (uid %d): hosts of their own need network namespaces and an sshd per host", os.Geteuid())
	}
	return ""
}

// sshMode brings up a multi-host sandbox (pg1 primary, two standbys,
// PgBouncer, each on a host of its own) and runs Runs round trips pg1 ->
// pg2 -> pg1 of the playbook over ssh, printing each row. When the mode
// cannot run here it prints why and returns the reason, with no rows.
func (b *bench) sshMode(ctx context.Context) (rows []*switchover, skipped string, err error) {
	if skipped = sshSkipped(); skipped != "" {
		fmt.Fprintf(b.out, "\n== ssh mode skipped: %s\n", skipped)
		return nil, skipped, nil
	}
	if err := b.upHosts(ctx, 2); err != nil {
		return nil, "", err
	}
	defer os.Unsetenv(transport.ShellsOff)
	for i := 1; i <= b.o.Runs; i++ {
		for _, mode := range []string{modeSSH, modeSSHSessions} {
			if mode == modeSSHSessions {
				os.Setenv(transport.ShellsOff, "off")
			} else {
				os.Unsetenv(transport.ShellsOff)
			}
			for _, d := range [][2]string{{"pg1", "pg2"}, {"pg2", "pg1"}} {
				s, err := b.switchover(ctx, b.rb, mode, b.sb.Inventory(), i, d[0], d[1])
				if err != nil {
					return rows, "", err
				}
				s.print(b.out)
				rows = append(rows, s)
			}
		}
	}
	return rows, "", b.down()
}

// upHosts brings up a multi-host sandbox with n standbys in the work
// directory.
func (b *bench) upHosts(ctx context.Context, standbys int) error {
	dir := filepath.Join(b.work, fmt.Sprintf("sandbox-hosts-%d", standbys))
	fmt.Fprintf(b.out, "\n== sandbox up --hosts: pg1 primary, %d standbys, PgBouncer in front, each on a host of its own reached over ssh (%s)\n", standbys, dir)
	uctx, cancel := context.WithTimeout(ctx, upTimeout)
	defer cancel()
	start := time.Now()
	sb, err := sandbox.Up(uctx, sandbox.Options{Dir: dir, Standbys: standbys, Hosts: true,
		Log: func(format string, args ...any) { fmt.Fprintf(b.log, "  sandbox: "+format+"\n", args...) }})
	if err != nil {
		return fmt.Errorf("sandbox up --hosts (%d standbys): %w", standbys, err)
	}
	b.sb = sb
	if sb.Net == nil {
		return errors.New("sandbox up --hosts: the sandbox has no private network")
	}
	fmt.Fprintf(b.out, "   up in %s: network %s, the bastion at %s\n", time.Since(start).Round(time.Millisecond), sb.Net.Subnet, sb.Net.Bastion)
	header(b.out)
	return nil
}

// sshSummary prints the per-step breakdown over ssh beside the local
// pooler mode's, or why there is none.
func sshSummary(w io.Writer, all []*switchover, skipped string) {
	if skipped != "" {
		fmt.Fprintf(w, "\n== over ssh: skipped (%s)\n", skipped)
		return
	}
	local, remote := statsOf(all, modePooler), statsOf(all, modeSSH)
	if len(remote.window) == 0 {
		return
	}
	ratio := "-"
	if m := median(local.window); m > 0 {
		ratio = fmt.Sprintf("%.2fx", median(remote.window)/m)
	}
	fmt.Fprintf(w, "\n== over ssh beside local: median per step (%d switchovers each); ssh window / local pooler window: %s\n", len(remote.window), ratio)
	steps := func(mode string) (order []string, med map[string]float64) {
		per := map[string][]float64{}
		for _, s := range all {
			if s.mode != mode {
				continue
			}
			for _, name := range s.order {
				if _, ok := per[name]; !ok {
					order = append(order, name)
				}
				if d, ok := s.steps[name]; ok {
					per[name] = append(per[name], d)
				}
			}
		}
		med = map[string]float64{}
		for name, ds := range per {
			med[name] = median(ds)
		}
		return order, med
	}
	order, lm := steps(modePooler)
	sorder, sm := steps(modeSSH)
	_, pm := steps(modeSSHSessions)
	for _, name := range sorder {
		if _, ok := lm[name]; !ok {
			order = append(order, name)
		}
	}
	sessions := statsOf(all, modeSSHSessions)
	rows := [][]string{{"step", "local ms", "ssh ms", "ssh - local", "ssh, a session per command ms"}}
	cell := func(m map[string]float64, name string) string {
		if d, ok := m[name]; ok {
			return ms(d).String()
		}
		return "-"
	}
	for _, name := range order {
		diff := "-"
		l, lok := lm[name]
		r, rok := sm[name]
		if lok && rok {
			diff = fmt.Sprintf("%+.1f", r-l)
		}
		rows = append(rows, []string{name, cell(lm, name), cell(sm, name), diff, cell(pm, name)})
	}
	orDash := func(xs []float64) string {
		if len(xs) == 0 {
			return "-"
		}
		return ms(median(xs)).String()
	}
	rows = append(rows,
		[]string{"clients held (window)", ms(median(local.window)).String(), ms(median(remote.window)).String(),
			fmt.Sprintf("%+.1f", median(remote.window)-median(local.window)), orDash(sessions.window)},
		[]string{"whole switchover", ms(median(local.total)).String(), ms(median(remote.total)).String(),
			fmt.Sprintf("%+.1f", median(remote.total)-median(local.total)), orDash(sessions.total)})
	table(w, rows, 1)
	if m := median(local.window); m > 0 && len(sessions.window) > 0 {
		fmt.Fprintf(w, "   ssh with a session per command (no shell on the hosts), same run: window %.2fx local\n", median(sessions.window)/m)
	}
}

// sshResultOf is the ssh part of the last line: nil when the mode was
// skipped or measured nothing.
func sshResultOf(all []*switchover, skipped string) *modeResult {
	return modeResultOf(all, modeSSH, skipped)
}

// modeResultOf is one mode's part of the last line: nil when the mode was
// skipped or measured nothing.
func modeResultOf(all []*switchover, mode, skipped string) *modeResult {
	st := statsOf(all, mode)
	if skipped != "" || len(st.window) == 0 {
		return nil
	}
	r := st.result()
	return &r
}
