package steps

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/transport"
)

// The repoint rewrites PgBouncer's configuration file on the pooler's
// host: it reads the file, changes one entry, and writes it back. Over ssh
// each of those is a command, and the repoint runs while clients are held.
// So the pause reads the file before it holds anyone and keeps the text in
// the run's session; the repoint then writes in one command that first
// checks the file is still what was read, and reads it again only when it
// is not. A resumed run has no session: its repoint reads the file itself.

// sessionPoolerConfig is the session key of a configuration file's text
// as read before the pause, by the file's path.
func sessionPoolerConfig(path string) string { return "pgbouncer.config:" + path }

// configChangedExit is what the guarded write exits with, having written
// nothing, when the file is no longer what was read before the pause.
const configChangedExit = 9

// readPoolerConfig reads the pooler's configuration file on its host, whole
// and at most maxPoolerConfig bytes.
func readPoolerConfig(ctx context.Context, ex transport.Executor, path string) (string, error) {
	out, err := run(ctx, ex, "read "+path, fmt.Sprintf("wc -c < %s && cat %s", transport.ShellQuote(path), transport.ShellQuote(path)))
	if err != nil {
		return "", err
	}
	sizeLine, text, _ := strings.Cut(out.Stdout, "\n")
	size, err := strconv.Atoi(strings.TrimSpace(sizeLine))
	switch {
	case err != nil:
		return "", fmt.Errorf("read %s: cannot tell its size", path)
	case size > maxPoolerConfig:
		return "", fmt.Errorf("%s has %d bytes, more than the %d it rewrites; nothing changed", path, size, maxPoolerConfig)
	case size != len(text):
		return "", fmt.Errorf("read %s: got %d of its %d bytes; nothing changed", path, len(text), size)
	}
	return text, nil
}

// keepPoolerConfig reads the pooler's configuration file before clients
// are held, for the repoint. It never fails the pause: a file it cannot
// read is read, and its problem reported, by the repoint.
func keepPoolerConfig(ctx context.Context, t *cluster.Target, p *cluster.Pooler) {
	if t == nil || t.Session == nil || p == nil || p.Config == "" {
		return
	}
	ex, err := p.Host.Executor()
	if err != nil {
		return
	}
	if text, err := readPoolerConfig(ctx, ex, p.Config); err == nil {
		t.Session.Put(sessionPoolerConfig(p.Config), text)
	}
}

// keptPoolerConfig is the text keepPoolerConfig read, if any. It is
// forgotten as it is taken: a second repoint reads what the first wrote.
func keptPoolerConfig(t *cluster.Target, path string) (string, bool) {
	if t == nil || t.Session == nil {
		return "", false
	}
	v, ok := t.Session.Take(sessionPoolerConfig(path))
	if !ok {
		return "", false
	}
	text, ok := v.(string)
	return text, ok
}

// unchangedGuard is the shell that stops a command, having changed
// nothing, with configChangedExit when path no longer holds text.
func unchangedGuard(path, text string) string {
	sum := sha256.Sum256([]byte(text))
	return fmt.Sprintf(`if [ "$(sha256sum < %s 2>/dev/null)" != %s ]; then echo "changed since it was read"; exit %d; fi; `,
		transport.ShellQuote(path), transport.ShellQuote(hex.EncodeToString(sum[:])+"  -"), configChangedExit)
}

// writePoolerConfig replaces the file at path with updated, which goes to
// the host on the command's standard input. read is the text updated was
// made from, when it was read before the pause: the write is then one
// command, guarded by it. errConfigChanged says the file changed since;
// nothing was written.
func writePoolerConfig(ctx context.Context, ex transport.Executor, path, read, updated string, guarded bool) error {
	cmd := writeFileCommand(path)
	if guarded {
		cmd = unchangedGuard(path, read) + cmd
	}
	out, err := transport.RunInput(ctx, ex, cmd, strings.NewReader(updated))
	switch {
	case err != nil:
		return fmt.Errorf("write %s: %w", path, err)
	case guarded && out.ExitCode == configChangedExit:
		return errConfigChanged
	case out.ExitCode != 0:
		return errorWithLast(fmt.Sprintf("write %s exited %d", path, out.ExitCode), out)
	}
	return nil
}

// errConfigChanged: the configuration file is no longer what the pause
// read; read it again.
var errConfigChanged = errors.New("the configuration file changed since it was read")

// stagedRepoint is a pooler configuration repointed and written beside
// the file before clients were held (stageRepoint), for the repoint.
type stagedRepoint struct {
	To   hostPort // where the staged file points the client database
	Read string   // the configuration it was made from
	Text string   // what the staged file holds
}

// stagedPath is where a pooler's repointed configuration is staged.
func stagedPath(config string) string { return config + ".switchover-staged" }

// sessionStaged is the run session's key of what was staged for config.
func sessionStaged(config string) string { return "pgbouncer.staged:" + config }

// stageRepoint writes, before clients are held, the pooler's
// configuration as the repoint to node will write it, beside the file
// (stagedPath, with the file's mode), and keeps what it wrote in the run's
// session. It never fails the pause: what it cannot stage, the repoint
// writes itself.
func stageRepoint(ctx context.Context, t *cluster.Target, p *cluster.Pooler, node string) {
	if t == nil || t.Session == nil || p.Config == "" || p.Database == "" {
		return
	}
	kept, ok := t.Session.Take(sessionPoolerConfig(p.Config))
	if !ok {
		return
	}
	t.Session.Put(sessionPoolerConfig(p.Config), kept)
	v, ok := kept.(string)
	if !ok {
		return
	}
	r, err := nodeConninfo(t, node)
	if err != nil {
		return
	}
	to := hostPort{Host: r.Host, Port: r.PortString()}
	rp, err := repointConfig(v, p.Database, to)
	if err != nil || rp.Text == v {
		return
	}
	ex, err := p.Host.Executor()
	if err != nil {
		return
	}
	staged := transport.ShellQuote(stagedPath(p.Config))
	cmd := fmt.Sprintf(`cp -p %s %s && cat > %s || { rm -f %s; exit 1; }`, transport.ShellQuote(p.Config), staged, staged, staged)
	if out, err := transport.RunInput(ctx, ex, cmd, strings.NewReader(rp.Text)); err != nil || out.ExitCode != 0 {
		return
	}
	t.Session.Put(sessionStaged(p.Config), stagedRepoint{To: to, Read: v, Text: rp.Text})
}

// takeStaged returns what stageRepoint staged for config, and forgets it.
func takeStaged(t *cluster.Target, config string) (stagedRepoint, bool) {
	if t == nil || t.Session == nil {
		return stagedRepoint{}, false
	}
	v, ok := t.Session.Take(sessionStaged(config))
	if !ok {
		return stagedRepoint{}, false
	}
	st, ok := v.(stagedRepoint)
	return st, ok
}

// moveStagedCommand moves the staged configuration in place, unless the
// file changed since it was read (exit configChangedExit) or the staged
// file is not what was staged (exit stagedChangedExit): one command with
// no input.
func moveStagedCommand(config string, st stagedRepoint) string {
	sum := sha256.Sum256([]byte(st.Text))
	staged := transport.ShellQuote(stagedPath(config))
	return unchangedGuard(config, st.Read) +
		fmt.Sprintf(`if [ "$(sha256sum < %s 2>/dev/null)" != %s ]; then exit %d; fi; mv -f %s %s`,
			staged, transport.ShellQuote(hex.EncodeToString(sum[:])+"  -"), stagedChangedExit, staged, transport.ShellQuote(config))
}

// stagedChangedExit is what moveStagedCommand exits with when the staged
// file is not what was staged.
const stagedChangedExit = 4

// errStagedChanged: the staged configuration is not what was staged.
var errStagedChanged = errors.New("the staged configuration changed since it was written")

// moveStaged moves the staged configuration in place (moveStagedCommand).
func moveStaged(ctx context.Context, ex transport.Executor, config string, st stagedRepoint) error {
	out, err := ex.Run(ctx, moveStagedCommand(config, st))
	switch {
	case err != nil:
		return fmt.Errorf("move %s in place: %w", stagedPath(config), err)
	case out.ExitCode == configChangedExit:
		return errConfigChanged
	case out.ExitCode == stagedChangedExit:
		return errStagedChanged
	case out.ExitCode != 0:
		return errorWithLast(fmt.Sprintf("move %s in place exited %d", stagedPath(config), out.ExitCode), out)
	}
	return nil
}

// removeStaged removes a staged configuration the repoint did not use (a
// rollback's repoint elsewhere), best effort.
func removeStaged(ctx context.Context, ex transport.Executor, config string) {
	_, _ = ex.Run(ctx, "rm -f "+transport.ShellQuote(stagedPath(config)))
}
