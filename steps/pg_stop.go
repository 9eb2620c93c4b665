package steps

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/transport"
)

// The pg_controldata fields and states the stop, start and follow steps read.
const (
	controlState      = "Database cluster state"
	controlCheckpoint = "Latest checkpoint location"
	controlTimeline   = "Latest checkpoint's TimeLineID"
	stateShutDown     = "shut down"             // a primary stopped cleanly
	stateShutDownRecv = "shut down in recovery" // a standby stopped cleanly
)

func init() {
	Register(Definition{
		Kind: "pg.stop",
		Doc:  "stops a node's server cleanly and records its shutdown checkpoint LSN",
		Params: []params.Spec{
			{Name: "node", Type: params.Node, Required: true, Doc: nodeSpecDoc},
			{Name: "mode", Type: params.String, Default: "fast", Enum: []string{"fast", "smart"},
				Doc: "pg_ctl's shutdown mode: fast rolls back open transactions and disconnects clients; smart waits for clients to leave"},
			{Name: "wait", Type: params.Duration, Default: "60s", Doc: "how long pg_ctl waits for the shutdown (-t)"},
			{Name: "done_at", Type: params.String, Default: "exit", Enum: []string{"exit", "checkpoint"},
				Doc: "when a primary's stop is done: exit, once its postmaster has exited (or has stayed after_checkpoint after its shutdown checkpoint); checkpoint, as soon as the control file says its shutdown checkpoint is written (the server then takes no connection and writes no more WAL; its postmaster ends on its own once its WAL senders and archiver are done, and pg.start, pg.follow and pg.rewind wait for that, up to after_checkpoint, before they touch the data directory). A standby's stop is done at exit either way"},
			{Name: "after_checkpoint", Type: params.Duration, Default: "2s",
				Doc: "how long the postmaster may stay once its shutdown checkpoint is written (waiting for its archiver or a WAL sender) before the stop counts as done: the server then takes no connection and writes no more WAL, and a step that starts or rejoins it ends it at once; 0s waits for the postmaster to exit"},
			{Name: "command", Type: params.String,
				Doc: `shell command that stops the server instead of pg_ctl, e.g. "sudo systemctl stop postgresql@15-main"; the clean shutdown is still checked with pg_controldata`},
		},
		New: func(v params.Values) (Step, error) {
			return &PGStop{
				Node:            v.Node("node"),
				Mode:            v.String("mode"),
				Wait:            v.Duration("wait"),
				AfterCheckpoint: v.Duration("after_checkpoint"),
				DoneAt:          v.String("done_at"),
				Command:         strings.TrimSpace(v.String("command")),
			}, nil
		},
	})
}

// PGStop is a step that shuts a node's server down cleanly and proves it did:
// pg_controldata must say "shut down" (a primary) or "shut down in
// recovery" (a standby). It records the shutdown checkpoint's LSN as the
// fact <node>.shutdown_lsn: a standby that has replayed past it holds every
// commit the stopped primary acknowledged. Stopping a server that is
// already stopped cleanly does nothing and succeeds.
//
// The control file is proof only when it is the node's: before the stop,
// the node's system identifier is learnt from its server (or, when it does
// not answer, from the other nodes) and journaled as the fact
// <node>.system_identifier; a data_dir whose control file has another
// identifier belongs to another cluster, and the step refuses before it
// stops anything there.
//
// A postmaster that has written its shutdown checkpoint and stays (its
// archiver runs a hung archive_command, say) takes no connection and
// writes nothing more: after AfterCheckpoint the stop counts as done, so
// that the switchover goes forward (pg.caught_up then proves the
// candidate has that checkpoint) instead of holding clients until the
// stop times out and leaving no primary, since the rollback could not
// start a server whose stop never ends either. The WAL files its
// archiver did not archive are counted; pg.start and pg.follow end such a
// postmaster with an immediate stop, which loses nothing once the control
// file says shut down.
type PGStop struct {
	Node            string
	Mode            string // "fast" or "smart"
	Wait            time.Duration
	AfterCheckpoint time.Duration // 0: wait for the postmaster to exit
	// DoneAt is "checkpoint" when a primary's stop is done once its
	// shutdown checkpoint is in the control file, "exit" (or "") when its
	// postmaster must have exited.
	DoneAt  string
	Command string // replaces pg_ctl stop when set
}

var _ Step = (*PGStop)(nil)

// stopCommand is the command line that stops the server. pg_ctl's own
// wait (-w) looks for the end of the shutdown every 100 ms; this script
// signals the postmaster as pg_ctl stop -W would (signalCommand) and looks
// every 3 ms, then reads the control file in the
// same call, so a stop costs the shutdown itself and one round trip. With
// DoneAt "checkpoint" it also reads the control file's state on every turn
// and ends as soon as it says shut down: the postmaster then still waits
// for its WAL senders to send the last WAL and for its archiver, which
// takes some 10 ms more on an idle machine, while the server takes no
// connection and writes nothing.
//
// The script first reads the system identifier in the control file and
// stops nothing unless it is sysID, the node's (exit 5, printing the one it
// found after otherCluster).
func (s *PGStop) stopCommand(n *cluster.Node, sysID string) string {
	if s.Command != "" {
		return s.Command
	}
	pid := transport.ShellQuote(path.Join(dataDir(n), "postmaster.pid"))
	// Every 20th turn (some 0.1s) while the postmaster stays, the control
	// file is read: once it says shut down, c is when (date +%s, the
	// portable clock: whole seconds), and the loop ends AfterCheckpoint
	// after it, to the second.
	linger := ""
	switch {
	case s.DoneAt == doneAtCheckpoint:
		// The first controlHead bytes of the control file, in hex; bytes
		// 17 to 20 are the state, 1 (shut down) in either byte order.
		// Once it says shut down, the script prints them and ends: the
		// step reads the checkpoint and the identifier there, without a
		// pg_controldata inside the window.
		linger = fmt.Sprintf(`set -- $(od -An -t x1 -N %d %s 2>/dev/null); st="${17:-}${18:-}${19:-}${20:-}"; if [ "$st" = 01000000 ] || [ "$st" = 00000001 ]; then echo %s "$@"; exit 0; fi; `,
			controlHead, transport.ShellQuote(path.Join(dataDir(n), "global", "pg_control")), checkpointed)
	case s.AfterCheckpoint > 0:
		linger = fmt.Sprintf("if [ $((n %% 30)) -eq 0 ]; then if [ $c -lt 0 ]; then %s | grep -q '^%s: *%s$' && c=$(date +%%s); "+
			"elif [ $(( $(date +%%s) - c )) -ge %d ]; then echo %s $(ls %s 2>/dev/null | grep -c '[.]ready$'); break; fi; fi; ",
			controlDataCommand(n), controlState, stateShutDown, waitSeconds(s.AfterCheckpoint), lingering,
			transport.ShellQuote(path.Join(dataDir(n), "pg_wal", "archive_status")))
	}
	loop := fmt.Sprintf("while [ -e %[1]s ]; do n=$((n+1)); if [ $n -gt %[2]d ]; then echo \"still running after %[3]ds\" >&2; exit 3; fi; %[4]ssleep 0.003; done",
		pid, waitSeconds(s.Wait)*1000/3, waitSeconds(s.Wait), linger)
	if s.DoneAt == doneAtCheckpoint {
		loop = fmt.Sprintf("if command -v perl >/dev/null 2>&1; then perl -e %[1]s %[2]s %[3]s %[4]d %[5]d %[6]d; r=$?; if [ $r -eq %[6]d ]; then exit 0; elif [ $r -ne 0 ]; then exit $r; fi; else %[7]s; fi",
			transport.ShellQuote(checkpointWatch), pid, transport.ShellQuote(path.Join(dataDir(n), "global", "pg_control")), controlHead, waitSeconds(s.Wait), checkpointWatchSeen, loop)
	}
	return fmt.Sprintf("%[5]s; if [ -e %[1]s ]; then %[6]s; n=0; c=-1; %[7]s; else echo %[2]s; fi; %[3]s",
		pid, notRunning, controlDataCommand(n), s.Mode, sameClusterGuard(n, sysID), signalCommand(pid, s.Mode), loop)
}

// checkpointWatch is the stop's wait at done_at checkpoint, where perl is
// on the host: one process that reads the control file's first
// controlHead bytes every millisecond, where the shell's loop starts od and
// sleep on every turn (some 5 ms a turn, and two processes more on a
// machine busy with the shutdown). Its arguments are postmaster.pid, the
// control file, how many bytes to read of it, the deadline in seconds and
// the status to exit with once the state is shut down (checkpointWatchSeen),
// when it prints what the shell's loop prints;
// it exits 0 once postmaster.pid is gone first (the script goes on as
// after its loop), and 3 at the deadline.
const checkpointWatch = `my ($pid, $ctl, $len, $secs, $seen) = @ARGV; my $until = time + $secs + 1; ` +
	`while (-e $pid) { ` +
	`if (open(my $f, "<", $ctl)) { binmode $f; my $b = ""; my $got = read($f, $b, $len); close $f; ` +
	`if (defined $got && $got == $len && (substr($b, 16, 4) eq "\x01\x00\x00\x00" || substr($b, 16, 4) eq "\x00\x00\x00\x01")) { ` +
	`print "` + checkpointed + ` ", join(" ", map { sprintf "%02x", $_ } unpack("C*", $b)), "\n"; exit $seen; } } ` +
	`if (time > $until) { print STDERR "still running after ${secs}s\n"; exit 3 } ` +
	`select(undef, undef, undef, 0.001); } exit 0;`

// checkpointWatchSeen is checkpointWatch's exit status once it saw the
// shutdown checkpoint.
const checkpointWatchSeen = 10

// signalCommand sends the postmaster whose pid is on the first line of
// pidFile the signal of a shutdown in mode, as pg_ctl stop -W does
// (smart: SIGTERM, fast: SIGINT), with the shell's own read and kill: no
// process is started for it inside the window clients are held.
func signalCommand(pidFile, mode string) string {
	sig := "INT"
	if mode == "smart" {
		sig = "TERM"
	}
	return fmt.Sprintf(`read -r pm < %s; case "$pm" in ''|*[!0-9]*) echo "postmaster.pid names no postmaster: $pm" >&2; exit 1;; esac; kill -%s "$pm" || exit 1`, pidFile, sig)
}

// doneAtCheckpoint is the DoneAt of a stop that is done once the shutdown
// checkpoint is in the control file.
const doneAtCheckpoint = "checkpoint"

// The control file (global/pg_control) begins, in every PostgreSQL since
// 9.0, with the system identifier (uint64 at offset 0) and, at offset 16,
// the cluster's state (an enum, 4 bytes), in the host's byte order: od
// reads them without the fork of pg_controldata and its pipe. State 1 is
// DB_SHUTDOWNED, "shut down".
const (
	controlIdentifierOffset = 0
	controlStateOffset      = 16
	controlCheckpointOffset = 32
	dbShutdowned            = 1
)

// controlFieldCommand is the command that prints the field of n's control
// file at offset, as od's type typ (u8, d4) says.
func controlFieldCommand(n *cluster.Node, offset int, typ string) string {
	size := map[string]int{"u8": 8, "d4": 4}[typ]
	return fmt.Sprintf("od -An -t %s -j %d -N %d %s 2>/dev/null", typ, offset, size, transport.ShellQuote(path.Join(dataDir(n), "global", "pg_control")))
}

// checkpointed is what the stop script prints, before the first
// controlHead bytes of the control file in hex, when it ended at the
// shutdown checkpoint, the postmaster still finishing.
const checkpointed = "switchover:checkpointed"

// controlHead is how many bytes of the control file the stop reads: the
// fields up to the latest checkpoint's timeline in every PostgreSQL since
// 9.0.
const controlHead = 64

// checkpointedHead returns the control file's bytes the stop script
// printed after checkpointed, if it did.
func checkpointedHead(stdout string) ([]byte, bool) {
	for _, line := range strings.Split(stdout, "\n") {
		rest, ok := strings.CutPrefix(line, checkpointed)
		if !ok {
			continue
		}
		var head []byte
		for _, f := range strings.Fields(rest) {
			b, err := strconv.ParseUint(f, 16, 8)
			if err != nil {
				return nil, false
			}
			head = append(head, byte(b))
		}
		return head, true
	}
	return nil, false
}

// controlHeadFields reads, from the first bytes of a control file, what
// the stop needs of pg_controldata: the system identifier, the state, the
// latest checkpoint's location and timeline, under pg_controldata's own
// names. The byte order is the one in which pg_control_version (offset 8)
// is a version PostgreSQL wrote (9.0's 903 to 2000); the timeline is at
// offset 48 from pg_control_version 1100 (PostgreSQL 11) on, at 56 before.
func controlHeadFields(head []byte) (map[string]string, error) {
	if len(head) < controlHead {
		return nil, fmt.Errorf("%d bytes read, want %d", len(head), controlHead)
	}
	var order binary.ByteOrder = binary.LittleEndian
	if v := order.Uint32(head[8:]); v < 903 || v > 2000 {
		order = binary.BigEndian
		if v := order.Uint32(head[8:]); v < 903 || v > 2000 {
			return nil, errors.New("no pg_control_version in either byte order")
		}
	}
	state := order.Uint32(head[controlStateOffset:])
	if state != dbShutdowned {
		return nil, fmt.Errorf("state %d, not shut down", state)
	}
	tli := 56
	if order.Uint32(head[8:]) >= 1100 {
		tli = 48
	}
	return map[string]string{
		pg.ControlSystemIdentifier: strconv.FormatUint(order.Uint64(head[controlIdentifierOffset:]), 10),
		controlState:               stateShutDown,
		controlCheckpoint:          pg.LSN(order.Uint64(head[controlCheckpointOffset:])).String(),
		controlTimeline:            strconv.FormatUint(uint64(order.Uint32(head[tli:])), 10),
	}, nil
}

// lingering is what the stop script prints, before the number of WAL
// files that wait to be archived, when the postmaster stays after its
// shutdown checkpoint.
const lingering = "switchover:lingering"

// notRunning is what the stop script prints when no server ran.
const notRunning = "switchover:not-running"

// otherCluster is what the stop script prints, before the identifier it
// found, when the control file is of another cluster; it then exits
// otherClusterExit.
const (
	otherCluster     = "switchover:other-cluster"
	otherClusterExit = 5
)

// sameClusterGuard is the shell that stops the script, having changed
// nothing, when the control file in n's data_dir does not have the system
// identifier sysID.
func sameClusterGuard(n *cluster.Node, sysID string) string {
	if sysID == "" {
		sysID = "<system identifier of " + nodeName(n) + ">"
	}
	return fmt.Sprintf(`set -- $(%s); if [ "${1:-}" != %s ]; then echo %s "${1:-}"; exit %d; fi`,
		controlFieldCommand(n, controlIdentifierOffset, "u8"), transport.ShellQuote(sysID), otherCluster, otherClusterExit)
}

// nodeName names n for a placeholder.
func nodeName(n *cluster.Node) string {
	if n == nil {
		return "the node"
	}
	return n.Name
}

// SystemIDFact is cluster.SystemIDFact.
func SystemIDFact(node string) string { return cluster.SystemIDFact(node) }

// Describe implements Step.
func (s *PGStop) Describe(t *cluster.Target) Effect {
	n, _ := t.Node(s.Node)
	how := "fast: open transactions are rolled back and clients disconnected"
	if s.Mode == "smart" {
		how = "smart: it waits for every client to disconnect first"
	}
	if s.Command != "" {
		how = "with the given command"
	}
	sysID := ""
	if t != nil && t.Facts != nil {
		sysID, _ = t.Facts.Get(SystemIDFact(s.Node))
	}
	linger := ""
	switch {
	case s.Command != "":
	case s.DoneAt == doneAtCheckpoint:
		linger = fmt.Sprintf("; the stop is done once the control file says its shutdown checkpoint is written (it then takes no connection and writes no more WAL), its postmaster ending on its own once its WAL senders and archiver are done; a step that starts, rejoins or rewinds it waits up to %s for that", lingerGrace)
	case s.AfterCheckpoint > 0:
		linger = fmt.Sprintf("; a postmaster still there %s after its shutdown checkpoint (waiting for its archiver or a WAL sender) counts as stopped: it takes no connection and writes no more WAL", s.AfterCheckpoint)
	}
	return Effect{Node: nodeWhere(t, s.Node), Command: s.stopCommand(n, sysID),
		Changes: fmt.Sprintf("stops PostgreSQL on %s (%s) only if the control file in its data_dir has %s's system identifier (asked of the server first, fact %s); then %s must report a clean shutdown of that cluster, and its latest checkpoint location is recorded as %s.shutdown_lsn%s",
			s.Node, how, s.Node, SystemIDFact(s.Node), controlDataCommand(n), s.Node, linger)}
}

// controlDataCommand is the command line that reads n's control file, in
// English whatever the host's locale.
func controlDataCommand(n *cluster.Node) string {
	return fmt.Sprintf("LC_ALL=C %s -D %s", transport.ShellQuote(binPath(n, "pg_controldata")), transport.ShellQuote(dataDir(n)))
}

// controlData runs pg_controldata on n's host and parses what it printed.
func controlData(ctx context.Context, ex transport.Executor, n *cluster.Node) (map[string]string, error) {
	out, err := run(ctx, ex, "pg_controldata", controlDataCommand(n))
	if err != nil {
		return nil, err
	}
	cd := pg.ParseControlData(out.Stdout)
	if cd[controlState] == "" {
		return nil, fmt.Errorf("pg_controldata printed no %q", controlState)
	}
	return cd, nil
}

// cleanlyShutDown reports whether a control file's state is a clean
// shutdown.
func cleanlyShutDown(cd map[string]string) bool {
	st := cd[controlState]
	return st == stateShutDown || st == stateShutDownRecv
}

// Apply implements Step.
func (s *PGStop) Apply(ctx context.Context, t *cluster.Target) error {
	fail := func(err error) error { return fmt.Errorf("stop %q: %w", s.Node, err) }
	n, ex, err := hostNode(t, s.Node)
	if err != nil {
		return fail(err)
	}
	sysID, err := s.systemID(ctx, t)
	if err != nil {
		return fail(fmt.Errorf("%w; nothing stopped", err))
	}
	if s.Command != "" {
		return s.applyCommand(ctx, t, ex, n, sysID)
	}
	// The run's idle connections to it would end with the shutdown; closed
	// now, their backends end while the command starts, not in the
	// shutdown's wait for every backend.
	pg.SessionCache(t.Session).Drop(n.Conninfo)
	out, err := ex.Run(ctx, s.stopCommand(n, sysID))
	if err != nil {
		switch {
		case errors.Is(err, transport.ErrConnection):
			return fail(fmt.Errorf("the stop: %w; nothing was run on %s", err, ex.Where()))
		case ctx.Err() != nil:
			// No answer before the step was cut off (a cut link, say):
			// the command may have begun there, or never arrived.
			return fail(fmt.Errorf("the stop: %w; no answer from %s before that: whether the stop began there is not known (pg.start finds out: it starts a stopped server and leaves a running one)", err, ex.Where()))
		}
		return fail(fmt.Errorf("the stop: %w", err))
	}
	if found, ok := strings.CutPrefix(out.Stdout, otherCluster); ok && out.ExitCode == otherClusterExit {
		return fail(s.otherClusterError(n, ex, sysID, strings.TrimSpace(found)))
	}
	if out.ExitCode != 0 {
		printOutput(t, out)
		err := errorWithLast(fmt.Sprintf("the stop exited %d", out.ExitCode), out)
		if out.ExitCode == 3 {
			// The shutdown began and did not end: the server refuses new
			// connections and, in smart mode, waits for every client to
			// leave. It is left so (still serving the sessions it has); a
			// pg.start, as the rollback runs it, finishes the shutdown fast
			// and starts the server again.
			err = fmt.Errorf("%w; the server is still shutting down (%s mode) and refuses new connections: pg.start finishes the shutdown fast and starts it again", err, s.Mode)
		}
		return fail(err)
	}
	wasRunning := !strings.HasPrefix(out.Stdout, notRunning)
	stayed, unarchived := lingered(out.Stdout)
	cd := pg.ParseControlData(out.Stdout)
	atCheckpoint := false
	if head, ok := checkpointedHead(out.Stdout); ok {
		if cd, err = controlHeadFields(head); err != nil {
			return fail(fmt.Errorf("the stop ended at the shutdown checkpoint, but its control file: %w", err))
		}
		atCheckpoint = true
	}
	if cd[controlState] == "" {
		return fail(fmt.Errorf("pg_controldata printed no %q", controlState))
	}
	if err := s.sameCluster(n, ex, sysID, cd); err != nil {
		return fail(err)
	}
	if !wasRunning {
		// Nothing ran. That is done only if the last shutdown was clean; a
		// crashed server is not "stopped" for us.
		if !cleanlyShutDown(cd) {
			return fail(fmt.Errorf("no server runs, but it was not shut down cleanly (pg_controldata: %q): it crashed or was killed; nothing done", cd[controlState]))
		}
		t.Unchanged(fmt.Sprintf("%s is already stopped cleanly (pg_controldata: %s); nothing to do", s.Node, cd[controlState]))
		return s.record(t, cd)
	}
	if !cleanlyShutDown(cd) {
		return fail(fmt.Errorf("the stop succeeded, but pg_controldata says %q, not a clean shutdown", cd[controlState]))
	}
	if stayed {
		archive := "Nothing waits to be archived there."
		if unarchived > 0 {
			archive = fmt.Sprintf("It has %s waiting to be archived (pg_wal/archive_status): once it is a standby, it does not archive them (unless archive_mode=always); copy them to the archive by hand.",
				plural(unarchived, "1 WAL file", fmt.Sprintf("%d WAL files", unarchived)))
		}
		t.Print(fmt.Sprintf("%s wrote its shutdown checkpoint (pg_controldata: %s), but its postmaster still runs %s later, waiting for its archiver or a WAL sender: it takes no connection and writes no more WAL, so the stop counts as done. %s pg.follow or pg.start ends that postmaster with an immediate stop",
			s.Node, cd[controlState], s.AfterCheckpoint, archive))
		if t.Facts != nil {
			t.Facts.Set(s.Node+".unarchived_at_stop", fmt.Sprint(unarchived))
		}
		return s.record(t, cd)
	}
	if atCheckpoint {
		t.Print(fmt.Sprintf("%s wrote its shutdown checkpoint (control file: %s): it takes no connection and writes no more WAL; its postmaster ends on its own once its WAL senders and archiver are done", s.Node, cd[controlState]))
		return s.record(t, cd)
	}
	t.Print(fmt.Sprintf("%s shut down cleanly (pg_controldata: %s)", s.Node, cd[controlState]))
	return s.record(t, cd)
}

// lingered reads the stop script's output: whether the postmaster stayed
// after its shutdown checkpoint, and how many files then waited to be
// archived.
func lingered(stdout string) (bool, int) {
	for _, line := range strings.Split(stdout, "\n") {
		if rest, ok := strings.CutPrefix(line, lingering); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(rest))
			return true, n
		}
	}
	return false, 0
}

// applyCommand stops the server with the runbook's own command (systemctl,
// say), then checks the control file.
func (s *PGStop) applyCommand(ctx context.Context, t *cluster.Target, ex transport.Executor, n *cluster.Node, sysID string) error {
	fail := func(err error) error { return fmt.Errorf("stop %q: %w", s.Node, err) }
	before, err := controlData(ctx, ex, n)
	if err != nil {
		return fail(fmt.Errorf("reading the control file before the stop: %w; nothing stopped", err))
	}
	if before[pg.ControlSystemIdentifier] != sysID {
		return fail(s.otherClusterError(n, ex, sysID, before[pg.ControlSystemIdentifier]))
	}
	out, err := ex.Run(ctx, s.Command)
	printOutput(t, out)
	switch {
	case err != nil:
		return fail(fmt.Errorf("stop command: %w", err))
	case out.ExitCode != 0:
		return fail(errorWithLast(fmt.Sprintf("stop command exited %d", out.ExitCode), out))
	}
	cd, err := controlData(ctx, ex, n)
	if err != nil {
		return fail(fmt.Errorf("stop command succeeded, but checking the shutdown failed: %w", err))
	}
	if err := s.sameCluster(n, ex, sysID, cd); err != nil {
		return fail(err)
	}
	if !cleanlyShutDown(cd) {
		return fail(fmt.Errorf("stop command succeeded, but pg_controldata says %q, not a clean shutdown", cd[controlState]))
	}
	t.Print(fmt.Sprintf("%s shut down cleanly (pg_controldata: %s)", s.Node, cd[controlState]))
	return s.record(t, cd)
}

func (s *PGStop) record(t *cluster.Target, cd map[string]string) error {
	lsn, err := pg.ParseLSN(cd[controlCheckpoint])
	if err != nil {
		return fmt.Errorf("stop %q: pg_controldata's %q: %w", s.Node, controlCheckpoint, err)
	}
	key := s.Node + ".shutdown_lsn"
	if t.Facts != nil {
		t.Facts.Set(key, lsn.String())
	}
	t.Print(fmt.Sprintf("shutdown checkpoint of %s at %s on timeline %s (fact %s)", s.Node, lsn, cd[controlTimeline], key))
	return nil
}

// systemID returns the system identifier of node's cluster, and journals it
// as a fact before the stop: the fact when an earlier attempt of this run
// recorded it, else the server's answer, else (the server does not answer:
// stopped already, or a resumed run) what every other node that answers
// says, which must be one identifier.
func (s *PGStop) systemID(ctx context.Context, t *cluster.Target) (string, error) {
	key := SystemIDFact(s.Node)
	if t.Facts != nil {
		if v, ok := t.Facts.Get(key); ok && v != "" {
			return v, nil
		}
	}
	record := func(id, from string) string {
		if t.Facts != nil {
			t.Facts.Set(key, id)
		}
		t.Print(fmt.Sprintf("system identifier of %s's cluster: %s (%s; fact %s)", s.Node, id, from, key))
		return id
	}
	id, err := askSystemID(ctx, t, s.Node)
	if err == nil {
		return record(id, "asked of "+s.Node), nil
	}
	why := err
	byID := map[string][]string{}
	for _, other := range t.Cluster.NodeOrder() {
		if other == s.Node {
			continue
		}
		if id, err := askSystemID(ctx, t, other); err == nil {
			byID[id] = append(byID[id], other)
		}
	}
	switch len(byID) {
	case 0:
		return "", fmt.Errorf("the system identifier of %s's cluster is unknown: %v, and no other node answers; without it the control file in its data_dir proves nothing", s.Node, why)
	case 1:
		for id, nodes := range byID {
			return record(id, fmt.Sprintf("%s does not answer (%v); asked of %s", s.Node, why, strings.Join(nodes, ", "))), nil
		}
	}
	var parts []string
	for id, nodes := range byID {
		parts = append(parts, fmt.Sprintf("%s say %s", strings.Join(nodes, ", "), id))
	}
	slices.Sort(parts)
	return "", fmt.Errorf("%s does not answer (%v), and the other nodes are not of one cluster (%s)", s.Node, why, strings.Join(parts, "; "))
}

// askSystemID asks node's server for its system identifier, within a few
// seconds of ctx's time.
func askSystemID(ctx context.Context, t *cluster.Target, node string) (string, error) {
	n, err := t.Node(node)
	if err != nil {
		return "", err
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := connectNode(actx, t, n, remaining(actx))
	if err != nil {
		return "", err
	}
	defer closeConn(conn)
	return pg.SystemIdentifier(actx, conn)
}

// sameCluster refuses a control file that is not of node's cluster as proof
// of anything about the node.
func (s *PGStop) sameCluster(n *cluster.Node, ex transport.Executor, sysID string, cd map[string]string) error {
	if got := cd[pg.ControlSystemIdentifier]; got != sysID {
		return fmt.Errorf("the control file in data_dir %s (on %s) has system identifier %q, but %s's cluster has %s: it is another cluster's, and proves nothing about %s",
			n.DataDir, ex.Where(), got, s.Node, sysID, s.Node)
	}
	return nil
}

// otherClusterError is the refusal when the control file in n's data_dir
// is of another cluster than the node's server: nothing was stopped.
func (s *PGStop) otherClusterError(n *cluster.Node, ex transport.Executor, sysID, found string) error {
	if found == "" {
		return fmt.Errorf("refused: no control file could be read in data_dir %s (on %s), and %s's cluster has system identifier %s; nothing stopped",
			n.DataDir, ex.Where(), s.Node, sysID)
	}
	return fmt.Errorf("refused: the control file in data_dir %s (on %s) has system identifier %s, but %s's cluster has %s: that data_dir is another cluster's; nothing stopped",
		n.DataDir, ex.Where(), found, s.Node, sysID)
}

// lingerGrace is how long pg.start, pg.follow and pg.rewind let a
// postmaster that has written its shutdown checkpoint end on its own (its
// WAL senders sending the last WAL, its archiver archiving) before they end
// it with an immediate stop.
const lingerGrace = 2 * time.Second

// endLingering ends a postmaster that stays after its shutdown checkpoint
// (pg.stop counted that stop as done): when postmaster.pid says it is
// stopping and the control file says shut down, it first waits up to
// lingerGrace for the postmaster to exit by itself; one that still stays
// waits for a hung archiver or a WAL sender, and an immediate stop loses
// nothing, where a fast one would wait on what it waits for. The WAL files
// its archiver did not archive are named and counted (fact
// <node>.unarchived_at_stop). It reports whether it found such a
// postmaster.
func endLingering(ctx context.Context, t *cluster.Target, ex transport.Executor, n *cluster.Node) (bool, error) {
	status, err := postmasterStatus(ctx, ex, n)
	if err != nil || status != pmStatusStopping {
		return false, err
	}
	cd, err := controlData(ctx, ex, n)
	if err != nil || cd[controlState] != stateShutDown {
		return false, err
	}
	pid := transport.ShellQuote(path.Join(dataDir(n), "postmaster.pid"))
	turns := int(lingerGrace / (10 * time.Millisecond))
	out, err := run(ctx, ex, "waiting for the postmaster to exit", fmt.Sprintf(
		"n=0; while [ -e %s ] && [ $n -lt %d ]; do n=$((n+1)); sleep 0.01; done; if [ -e %s ]; then echo %s $(ls %s 2>/dev/null | grep -c '[.]ready$'); fi; true",
		pid, turns, pid, lingering, transport.ShellQuote(path.Join(dataDir(n), "pg_wal", "archive_status"))))
	if err != nil {
		return false, err
	}
	stayed, unarchived := lingered(out.Stdout)
	if !stayed {
		t.Print(fmt.Sprintf("%s's postmaster, stopping after its shutdown checkpoint, has exited", n.Name))
		return true, nil
	}
	archive := "Nothing waits to be archived there."
	if unarchived > 0 {
		archive = fmt.Sprintf("It has %s waiting to be archived (pg_wal/archive_status): once it is a standby, it does not archive them (unless archive_mode=always); copy them to the archive by hand.",
			plural(unarchived, "1 WAL file", fmt.Sprintf("%d WAL files", unarchived)))
	}
	if t.Facts != nil {
		t.Facts.Set(n.Name+".unarchived_at_stop", fmt.Sprint(unarchived))
	}
	t.Print(fmt.Sprintf("%s's postmaster still runs %s after its shutdown checkpoint (pg_controldata: %s; postmaster.pid: %s), waiting for its archiver or a WAL sender. %s Stopping it immediately, which loses nothing now",
		n.Name, lingerGrace, cd[controlState], status, archive))
	out, err = ex.Run(ctx, fmt.Sprintf("%s stop -D %s -m immediate -w -t 30", transport.ShellQuote(binPath(n, "pg_ctl")), transport.ShellQuote(dataDir(n))))
	printOutput(t, out)
	switch {
	case err != nil:
		return true, fmt.Errorf("pg_ctl stop -m immediate: %w", err)
	case out.ExitCode != 0:
		return true, errorWithLast(fmt.Sprintf("pg_ctl stop -m immediate exited %d", out.ExitCode), out)
	}
	return true, nil
}

// stillRunning reports whether n's server still runs once a postmaster
// that was ending after its shutdown checkpoint has been waited for, or
// ended (endLingering).
func stillRunning(ctx context.Context, t *cluster.Target, ex transport.Executor, n *cluster.Node) (bool, error) {
	ended, err := endLingering(ctx, t, ex, n)
	if err != nil {
		return true, err
	}
	return !ended, nil
}
