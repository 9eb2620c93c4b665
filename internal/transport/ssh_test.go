package transport

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/transport/sshtest"
)

func TestParseSSHAddress(t *testing.T) {
	t.Parallel()
	tests := []struct {
		address            string
		wantUser, wantHost string
		wantPort           string
		wantErr            string // a part of the error; "" for none
	}{
		{address: "db1", wantHost: "db1"},
		{address: "postgres@db1", wantUser: "postgres", wantHost: "db1"},
		{address: "postgres@db1:2222", wantUser: "postgres", wantHost: "db1", wantPort: "2222"},
		{address: "db1.example.com:22", wantHost: "db1.example.com", wantPort: "22"},
		{address: "ssh://postgres@db1:2222", wantUser: "postgres", wantHost: "db1", wantPort: "2222"},
		{address: "ssh://db1", wantHost: "db1"},
		{address: "[::1]:2222", wantHost: "::1", wantPort: "2222"},
		{address: "root@[fe80::1]", wantUser: "root", wantHost: "fe80::1"},
		{address: "ssh://root@[::1]:22", wantUser: "root", wantHost: "::1", wantPort: "22"},
		{address: "root@::1", wantUser: "root", wantHost: "::1"},
		{address: "10.0.0.5:65535", wantHost: "10.0.0.5", wantPort: "65535"},

		{address: "", wantErr: `bad ssh address "": empty`},
		{address: "  ", wantErr: "empty"},
		{address: "ssh://", wantErr: "empty host"},
		{address: "postgres@", wantErr: "empty host"},
		{address: ":22", wantErr: "empty host"},
		{address: "postgres@:22", wantErr: "empty host"},
		{address: "[]:22", wantErr: "empty host"},
		{address: "@db1", wantErr: "empty user before @"},
		{address: "a@b@db1", wantErr: "more than one @"},
		{address: "db1:", wantErr: "empty port"},
		{address: "[::1]:", wantErr: "empty port"},
		{address: "db1:ssh", wantErr: `port "ssh" is not a number from 1 to 65535`},
		{address: "db1:0", wantErr: `port "0" is not a number`},
		{address: "db1:65536", wantErr: `port "65536" is not a number`},
		{address: "db1:+22", wantErr: `port "+22" is not a number`},
		{address: "db1:-1", wantErr: `port "-1" is not a number`},
		{address: "[::1", wantErr: "missing ]"},
		{address: "[::1]x", wantErr: `unexpected "x" after ]`},
		{address: "ssh://db1/var", wantErr: "nothing after the port"},
		{address: "ssh://db1:22/", wantErr: "nothing after the port"},
		{address: "http://db1", wantErr: "the only scheme allowed is ssh://"},
		{address: "db 1", wantErr: "space or control character"},
		{address: "db1\n", wantErr: "space or control character"},
		{address: "-oProxyCommand=x", wantErr: "host starts with -"},
		{address: "-oProxyCommand=x@db1", wantErr: "user starts with -"},
		{address: "ssh://postgres:s3cret@db1", wantErr: `bad ssh address "ssh://postgres:xxxxx@db1": a password has no place in it`},
		{address: "postgres:s3cret@db1:22", wantErr: `bad ssh address "postgres:xxxxx@db1:22": a password`},
		{address: "postgres:s3cret@db1:x", wantErr: `"postgres:xxxxx@db1:x"`},
	}
	for _, tt := range tests {
		t.Run(tt.address, func(t *testing.T) {
			t.Parallel()
			user, host, port, err := ParseSSHAddress(tt.address)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseSSHAddress(%q) = %q, %q, %q, %v; want an error with %q", tt.address, user, host, port, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("the error %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSSHAddress(%q): %v", tt.address, err)
			}
			if user != tt.wantUser || host != tt.wantHost || port != tt.wantPort {
				t.Errorf("ParseSSHAddress(%q) = %q, %q, %q; want %q, %q, %q", tt.address, user, host, port, tt.wantUser, tt.wantHost, tt.wantPort)
			}
		})
	}
}

func TestSSHWhere(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ssh  SSH
		want string
	}{
		{ssh: SSH{Address: "postgres@db1:2222"}, want: "ssh postgres@db1:2222"},
		{ssh: SSH{Address: "ssh://postgres@db1:2222"}, want: "ssh postgres@db1:2222"},
		{ssh: SSH{Address: "db1"}, want: "ssh db1"},
		{ssh: SSH{Address: "root@[::1]:22"}, want: "ssh root@[::1]:22"},
		{ssh: SSH{Address: "::1"}, want: "ssh ::1"},
		{ssh: SSH{Address: "admin@db1", User: "postgres"}, want: "ssh admin@db1 as postgres"},
		{ssh: SSH{Address: "db1", User: "postgres"}, want: "ssh db1 as postgres"},
		{ssh: SSH{Address: "postgres@db1", User: "postgres"}, want: "ssh postgres@db1"},
		{ssh: SSH{Address: "db1:x"}, want: "ssh db1:x"},
		{ssh: SSH{Address: "ssh://postgres:s3cret@db1"}, want: "ssh ssh://postgres:xxxxx@db1"},
	}
	for _, tt := range tests {
		if got := tt.ssh.Where(); got != tt.want {
			t.Errorf("%+v.Where() = %q, want %q", tt.ssh, got, tt.want)
		}
	}
}

func TestShellQuote(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{in: "", want: "''"},
		{in: "plain", want: "plain"},
		{in: "/usr/lib/postgresql/15/bin/pg_ctl", want: "/usr/lib/postgresql/15/bin/pg_ctl"},
		{in: "--source-server=host=db1,port=5432@x%y+z:1", want: "--source-server=host=db1,port=5432@x%y+z:1"},
		{in: "PGDATA=/srv/pg", want: "'PGDATA=/srv/pg'"},
		{in: "two words", want: "'two words'"},
		{in: "it's", want: `'it'\''s'`},
		{in: "'", want: `''\'''`},
		{in: `$HOME "x" \n ; && * ~`, want: `'$HOME "x" \n ; && * ~'`},
		{in: "two\nlines", want: "'two\nlines'"},
	}
	for _, tt := range tests {
		got := ShellQuote(tt.in)
		if got != tt.want {
			t.Errorf("ShellQuote(%q) = %q, want %q", tt.in, got, tt.want)
		}
		// A shell reads the quoted word back as the original string.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		out, err := Local{}.Run(ctx, "printf %s "+got)
		cancel()
		if err != nil || out.Stdout != tt.in {
			t.Errorf("sh read %s back as %q (err %v), want %q", got, out.Stdout, err, tt.in)
		}
	}
}

// TestShellQuoteCommandPosition: a quoted NAME=VALUE put first on a command
// line is a command name, as the word it stands for, not an assignment that
// a shell would run as a successful no-op.
func TestShellQuoteCommandPosition(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"PGDATA=/srv/pg", "x=1", "_a9="} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		out, err := Local{}.Run(ctx, ShellQuote(in)+" 2>/dev/null")
		cancel()
		if err != nil || out.ExitCode != 127 {
			t.Errorf("sh ran %s as exit %d (err %v), want 127: not found as a command", ShellQuote(in), out.ExitCode, err)
		}
	}
}

func TestSSHArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		ssh    SSH
		socket string
		want   string
	}{
		{name: "defaults", ssh: SSH{Address: "db1"},
			want: "-o BatchMode=yes -o ConnectTimeout=5 -o LogLevel=ERROR -T db1 -- REMOTE"},
		{name: "user, port and config", ssh: SSH{Address: "ssh://postgres@db1:2222", ConfigFile: "/etc/switchover/ssh_config"},
			want: "-o BatchMode=yes -o ConnectTimeout=5 -o LogLevel=ERROR -T -F /etc/switchover/ssh_config -p 2222 postgres@db1 -- REMOTE"},
		{name: "timeout rounded up to whole seconds", ssh: SSH{Address: "db1", ConnectTimeout: 1500 * time.Millisecond},
			want: "-o BatchMode=yes -o ConnectTimeout=2 -o LogLevel=ERROR -T db1 -- REMOTE"},
		{name: "timeout under a second", ssh: SSH{Address: "db1", ConnectTimeout: time.Millisecond},
			want: "-o BatchMode=yes -o ConnectTimeout=1 -o LogLevel=ERROR -T db1 -- REMOTE"},
		{name: "IPv6 without brackets", ssh: SSH{Address: "root@[::1]:22"},
			want: "-o BatchMode=yes -o ConnectTimeout=5 -o LogLevel=ERROR -T -p 22 root@::1 -- REMOTE"},
		{name: "over a master connection, the config kept", ssh: SSH{Address: "ssh://postgres@db1:2222", ConfigFile: "/etc/switchover/ssh_config"}, socket: "/tmp/swo-1/0",
			want: "-o BatchMode=yes -o ConnectTimeout=5 -o LogLevel=ERROR -T -F /etc/switchover/ssh_config -p 2222 -o ControlMaster=no -o ControlPath=/tmp/swo-1/0 postgres@db1 -- REMOTE"},
		{name: "on a connection of its own", ssh: SSH{Address: "db1"}, socket: "none",
			want: "-o BatchMode=yes -o ConnectTimeout=5 -o LogLevel=ERROR -T -o ControlMaster=no -o ControlPath=none db1 -- REMOTE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			user, host, port, err := ParseSSHAddress(tt.ssh.Address)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(tt.ssh.args(user, host, port, tt.socket, "REMOTE"), " "); got != tt.want {
				t.Errorf("args = %s\nwant   %s", got, tt.want)
			}
		})
	}
}

func TestSSHRunBadAddress(t *testing.T) {
	t.Parallel()
	_, err := SSH{Address: "db1:22x"}.Run(context.Background(), "true")
	if err == nil || !strings.Contains(err.Error(), `bad ssh address "db1:22x"`) {
		t.Errorf("Run with a bad address: error %v, want it to name the address", err)
	}
}

// TestMarkedStream checks that the wrapper's marker lines are taken out of
// stderr however the stream is split into writes, and that everything else,
// including text that only looks like a marker, is kept.
func TestMarkedStream(t *testing.T) {
	t.Parallel()
	const prefix = "\x1eswitchover:0123:"
	tests := []struct {
		name     string
		stream   string
		want     string
		wantMark markers
	}{
		{name: "markers only", stream: prefix + "start\n" + prefix + "exit 0\n",
			want: "", wantMark: markers{started: true, exited: true}},
		{name: "around the command's stderr", stream: prefix + "start\noops\n" + prefix + "exit 3\n",
			want: "oops\n", wantMark: markers{started: true, exited: true, code: 3, lastLine: "oops"}},
		{name: "after a line without a newline", stream: prefix + "start\noops" + prefix + "exit 1\n",
			want: "oops", wantMark: markers{started: true, exited: true, code: 1, lastLine: "oops"}},
		{name: "another run's marker is output", stream: "\x1eswitchover:9999:exit 0\n",
			want: "\x1eswitchover:9999:exit 0\n", wantMark: markers{lastLine: "\x1eswitchover:9999:exit 0"}},
		{name: "a lone separator byte", stream: "a\x1eb\n\x1e",
			want: "a\x1eb\n\x1e", wantMark: markers{lastLine: "\x1e"}},
		{name: "a marker never ended", stream: "x\n" + prefix + "exit 2",
			want: "x\n" + prefix + "exit 2", wantMark: markers{lastLine: prefix + "exit 2"}},
		{name: "sudo missing", stream: prefix + "start\n" + prefix + "sudo sudo is not installed on the host\n",
			want: "", wantMark: markers{started: true, sudo: "sudo is not installed on the host"}},
		{name: "sudo refused", stream: prefix + "start\nsudo: a password is required\n",
			want: "sudo: a password is required\n", wantMark: markers{started: true, lastLine: "sudo: a password is required"}},
		{name: "as the user asked for", stream: prefix + "start\n" + prefix + "as\nhi\n" + prefix + "exit 0\n",
			want: "hi\n", wantMark: markers{started: true, switched: true, exited: true, lastLine: "hi"}},
		{name: "ssh's own error", stream: "ssh: connect to host db1 port 22: Connection refused\r\n",
			want: "ssh: connect to host db1 port 22: Connection refused\r\n", wantMark: markers{lastLine: "ssh: connect to host db1 port 22: Connection refused"}},
	}
	for _, tt := range tests {
		for size := 1; size <= len(tt.stream); size++ {
			m := newMarkedStream(prefix)
			for rest := tt.stream; rest != ""; {
				n := min(size, len(rest))
				if w, err := m.Write([]byte(rest[:n])); w != n || err != nil {
					t.Fatalf("%s: Write = %d, %v", tt.name, w, err)
				}
				rest = rest[n:]
			}
			got, gotMark := m.String(), m.result()
			if got != tt.want || gotMark != tt.wantMark {
				t.Errorf("%s, in writes of %d bytes: got %q, %+v; want %q, %+v", tt.name, size, got, gotMark, tt.want, tt.wantMark)
			}
			select {
			case <-m.exited:
				if !tt.wantMark.exited {
					t.Errorf("%s: exited was signalled without an exit marker", tt.name)
				}
			default:
				if tt.wantMark.exited {
					t.Errorf("%s: exited was not signalled", tt.name)
				}
			}
		}
	}
}

// sshServer is a private sshd for one test (see sshtest.Start).
type sshServer = sshtest.Server

// startSSHD starts sshd for t with extra lines in its config.
func startSSHD(t *testing.T, extraConfig ...string) *sshServer {
	t.Helper()
	return sshtest.Start(t, extraConfig...)
}

// sshTo returns an SSH for the server's Host test.
func sshTo(s *sshServer) SSH { return SSH{Address: "test", ConfigFile: s.ConfigFile} }

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSSHRun(t *testing.T) {
	t.Parallel()
	server := startSSHD(t)
	tests := []struct {
		name    string
		command string
		want    Output // Elapsed is not compared
	}{
		{name: "stdout", command: "echo hello", want: Output{Stdout: "hello\n"}},
		{name: "stderr", command: "echo oops >&2", want: Output{Stderr: "oops\n"}},
		{name: "both and an exit code", command: "echo out; echo err >&2; exit 3", want: Output{Stdout: "out\n", Stderr: "err\n", ExitCode: 3}},
		{name: "stderr without a final newline", command: "printf oops >&2; exit 1", want: Output{Stderr: "oops", ExitCode: 1}},
		{name: "a shell pipeline", command: "printf 'b\\na\\n' | sort", want: Output{Stdout: "a\nb\n"}},
		{name: "command not found", command: "no-such-command-here 2>/dev/null", want: Output{ExitCode: 127}},
		{name: "the command exits 255", command: "echo bye; exit 255", want: Output{Stdout: "bye\n", ExitCode: 255}},
		{name: "stdin is empty", command: "cat; echo done", want: Output{Stdout: "done\n"}},
		{name: "the command runs as the login user", command: "id -un", want: Output{Stdout: server.LoginUser + "\n"}},
		{name: "a marker from another run is output", command: `printf '\036switchover:0:exit 0\n' >&2; exit 4`,
			want: Output{Stderr: "\x1eswitchover:0:exit 0\n", ExitCode: 4}},
		// Unlike Local (-1), a shell on the host reports a signal as 128+n.
		{name: "killed by a signal", command: "kill -KILL $$", want: Output{ExitCode: 128 + 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got, err := sshTo(server).Run(ctx, tt.command)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if got.Elapsed <= 0 {
				t.Errorf("Elapsed = %s, want it measured", got.Elapsed)
			}
			got.Elapsed = 0
			if got != tt.want {
				t.Errorf("Run(%q) = %+v, want %+v", tt.command, got, tt.want)
			}
		})
	}
}

// TestSSHRunInput: the input reaches the command on the host byte for
// byte, as with Local (over a shared connection: TestSSHReuseRunInput).
func TestSSHRunInput(t *testing.T) {
	t.Parallel()
	server := startSSHD(t)
	for _, tt := range inputCases() {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			got, err := sshTo(server).RunInput(ctx, tt.command, strings.NewReader(tt.input))
			if err != nil {
				t.Fatalf("RunInput: %v", err)
			}
			got.Elapsed = 0
			if got != tt.want {
				t.Errorf("RunInput(%q) = %+v, want %+v", tt.command, got, tt.want)
			}
		})
	}
}

// TestSSHRunMatchesLocal checks the quoting: a command runs on the host
// exactly as /bin/sh -c runs it here.
func TestSSHRunMatchesLocal(t *testing.T) {
	t.Parallel()
	server := startSSHD(t)
	commands := map[string]string{
		"single and double quotes": `echo 'single quoted' "double $((1+2))" "a'b\"c"`,
		"a quote inside quotes":    `x='it'"'"'s'; echo "$x"; printf %s "'\''"; echo`,
		"variables":                `a=1; b='two words'; echo $a$b; echo "$a"'$b' "$b"; unset b; echo "[${b:-unset}]"`,
		"; && and ||":              `true && echo and; false || echo or; false && echo never; echo semi; (exit 7); echo $?`,
		"newlines":                 "echo line1\necho line2\n\necho 'multi\nline'\n",
		"backslashes and tabs":     `printf '%s\n' "back\\slash" 'tab\there' back\ slash`,
		"positional parameters":    `set -- "a b" c; echo $# "$1"; for w in "$@"; do echo "[$w]"; done; echo "$0"`,
		"globs":                    `echo '*' "/dev/nul*"; echo /dev/nul*`,
		"a here-document":          "cat <<'EOF'\n$NOT_EXPANDED 'q' \"d\"\nEOF\ncat <<EOF\n$((6*7))\nEOF",
		"unicode":                  `echo 'héllo wörld ✓'`,
		"stderr and an exit code":  `echo err >&2; echo out; exit 5`,
		"a trap":                   `trap 'echo trapped' EXIT; echo body`,
		"a leading dash":           `-x`,
		"empty":                    ``,
		"many quotes":              strings.Repeat(`echo 'it'\''s';`, 300),
	}
	for name, command := range commands {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			want, err := Local{}.Run(ctx, command)
			if err != nil {
				t.Fatalf("Local Run: %v", err)
			}
			got, err := sshTo(server).Run(ctx, command)
			if err != nil {
				t.Fatalf("SSH Run: %v", err)
			}
			got.Elapsed, want.Elapsed = 0, 0
			if got != want {
				t.Errorf("over ssh, %q gave\n%+v\nlocally\n%+v", command, got, want)
			}
		})
	}
}

// TestSSHRunCutOff checks that a ctx cut-off returns promptly and that the
// command and what it started stop on the host, not only the local ssh.
func TestSSHRunCutOff(t *testing.T) {
	t.Parallel()
	server := startSSHD(t)
	for _, input := range []string{"", "password=s3cret\n"} {
		t.Run(fmt.Sprintf("input %q", input), func(t *testing.T) {
			t.Parallel()
			sshRunCutOff(t, server, input)
		})
	}
}

// sshRunCutOff is TestSSHRunCutOff for a command given input, when there
// is some: the watcher for the connection's end reads what follows it.
func sshRunCutOff(t *testing.T, server *sshServer, input string) {
	dir := t.TempDir()
	bgFile, fgFile := filepath.Join(dir, "background.pid"), filepath.Join(dir, "foreground.pid")
	command := fmt.Sprintf("echo started; sleep 30 & echo $! > %s; echo $$ > %s; exec sleep 30", bgFile, fgFile)
	// The deadline falls once the command runs on the host, however long
	// the login took on a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	// The cut-off falls once the command runs on the host (it has written
	// its pid whole) and what it printed first has reached this side.
	received := &capped{limit: maxOutput}
	ctx = context.WithValue(ctx, stdoutTap{}, received)
	var cutAt atomic.Int64
	go func() {
		for ctx.Err() == nil {
			if b, err := os.ReadFile(fgFile); err == nil && strings.HasSuffix(string(b), "\n") && strings.Contains(received.String(), "started\n") {
				cutAt.Store(time.Now().UnixNano())
				cancel()
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	out, err := sshTo(server).RunInput(ctx, command, strings.NewReader(input))
	back := time.Now()

	if at := cutAt.Load(); at == 0 {
		t.Errorf("within 25s, the command never started on the host or what it printed never reached this side (received %q): %v", received.String(), err)
	} else if took := back.Sub(time.Unix(0, at)); took > 2*time.Second {
		t.Errorf("Run came back %s after the cut-off, want it within 2s", took)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run error = %v, want it to wrap context.Canceled", err)
	}
	if err != nil && !strings.Contains(err.Error(), "command cut off after") {
		t.Errorf("Run error = %q, want it to say the command was cut off", err)
	}
	if out.ExitCode != -1 || out.Stdout != "started\n" {
		t.Errorf("Run output = %+v, want exit code -1 and what was printed before the cut-off", out)
	}
	for _, file := range []string{bgFile, fgFile} {
		pid := readPID(t, file)
		deadline := time.Now().Add(3 * time.Second)
		for alive(pid) {
			if time.Now().After(deadline) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				t.Fatalf("remote process %d (%s) still runs 3s after the cut-off", pid, filepath.Base(file))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestSSHRunLeavesDaemon checks that a command that starts a daemon holding
// its output returns when the remote shell exits, as with Local, and that
// the daemon keeps running.
func TestSSHRunLeavesDaemon(t *testing.T) {
	t.Parallel()
	server := startSSHD(t)
	pidFile := filepath.Join(t.TempDir(), "daemon.pid")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	out, err := sshTo(server).Run(ctx, fmt.Sprintf("sleep 30 & echo $! > %s; echo started", pidFile))
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	pid := readPID(t, pidFile)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	// The daemon sleeps 30s: a Run that waited for it would take that.
	// The login may take seconds on a loaded machine.
	if took > pipeGrace+12*time.Second {
		t.Errorf("Run took %s, want about %s (the grace for a daemon's output) and the login", took, pipeGrace)
	}
	if out.ExitCode != 0 || out.Stdout != "started\n" {
		t.Errorf("Run output = %+v, want exit code 0 and stdout %q", out, "started\n")
	}
	time.Sleep(200 * time.Millisecond) // time for a wrong kill to land
	if !alive(pid) {
		t.Errorf("the daemon %d was killed when Run returned; want it left running", pid)
	}
}

// TestSSHRunSessionEnds checks a command that kills the remote shell that
// runs it: the command did not finish, and Run says so.
func TestSSHRunSessionEnds(t *testing.T) {
	t.Parallel()
	server := startSSHD(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := sshTo(server).Run(ctx, "echo going; kill -KILL 0")
	if err == nil || !strings.Contains(err.Error(), "ssh test: the session ended before the command finished") {
		t.Errorf("Run error = %v, want it to say the session ended first", err)
	}
	if errors.Is(err, ErrConnection) {
		t.Errorf("Run error = %v wraps ErrConnection, but the connection worked", err)
	}
	if out.ExitCode != -1 || out.Stdout != "going\n" {
		t.Errorf("Run output = %+v, want exit code -1 and what was printed", out)
	}
}

// TestSSHRunConnectionFailed checks that ssh failing to connect or log in is
// an error wrapping ErrConnection with ssh's message, not an exit code 255.
func TestSSHRunConnectionFailed(t *testing.T) {
	t.Parallel()
	server := startSSHD(t)
	closed := "1" // nobody listens on 127.0.0.1:1
	tests := []struct {
		name    string
		address string
		wantErr []string
	}{
		{name: "a closed port", address: "test:" + closed,
			wantErr: []string{"ssh test:" + closed + ": connection failed: ", "port " + closed, "Connection refused"}},
		{name: "a key sshd does not accept", address: "wrongkey",
			wantErr: []string{"ssh wrongkey: connection failed: ", "Permission denied (publickey)"}},
		{name: "an unknown host key", address: "unknownhost",
			wantErr: []string{"ssh unknownhost: connection failed: ", "Host key verification failed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			out, err := SSH{Address: tt.address, ConfigFile: server.ConfigFile}.Run(ctx, "echo ran")
			if !errors.Is(err, ErrConnection) {
				t.Fatalf("Run = %+v, %v; want an error wrapping ErrConnection", out, err)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Run error = %q, want it to contain %q", err, want)
				}
			}
			if out.ExitCode == 255 || out.Stdout != "" {
				t.Errorf("Run output = %+v, want no exit code 255 and nothing run", out)
			}
		})
	}
}

// TestSSHRunAsUser checks User: no sudo when it is the login user, sudo -n
// -u otherwise, and a clear error when sudo is missing or refuses. A stand-in
// sudo (runuser underneath) plays a sudo that works or wants a password.
func TestSSHRunAsUser(t *testing.T) {
	t.Parallel()
	bin, sudoLog := fakeSudo(t)
	withSudo := startSSHD(t, "SetEnv PATH="+bin+":/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
	plain := startSSHD(t)
	login := withSudo.LoginUser
	noSudoSkip := ""
	if _, err := exec.LookPath("sudo"); err == nil {
		noSudoSkip = "sudo is installed on this machine, so the host cannot lack it"
	}
	_, runuserErr := exec.LookPath("runuser")

	tests := []struct {
		name    string
		server  *sshServer
		ssh     SSH
		command string
		input   string // the command's standard input
		want    string // stdout
		wantErr string // a part of the error; "" for none
		skip    string // why the case cannot run here; "" to run it
	}{
		{name: "the login user named in the address", server: withSudo, ssh: SSH{Address: login + "@test", User: login}, command: "id -un", want: login + "\n"},
		{name: "the login user from the ssh config", server: withSudo, ssh: SSH{Address: "test", User: login}, command: "id -un", want: login + "\n"},
		{name: "another user through sudo", server: withSudo, ssh: SSH{Address: "test", User: "nobody"}, command: "id -un; echo 'it'\\''s' \"$0\"",
			want: "nobody\nit's /bin/sh\n", skip: needRootAndRunuser(runuserErr)},
		{name: "another user through sudo reads its input", server: withSudo, ssh: SSH{Address: "test", User: "nobody"}, command: "id -un; cat",
			input: "password=s3cret\n", want: "nobody\npassword=s3cret\n", skip: needRootAndRunuser(runuserErr)},
		{name: "the login user reads its input", server: withSudo, ssh: SSH{Address: "test", User: login}, command: "cat",
			input: "password=s3cret\n", want: "password=s3cret\n"},
		{name: "sudo wants a password", server: withSudo, ssh: SSH{Address: "test", User: "nopass"}, command: "echo ran",
			wantErr: "ssh test as nopass: cannot run the command as nopass: sudo: a password is required"},
		{name: "sudo wants a password, given input", server: withSudo, ssh: SSH{Address: "test", User: "nopass"}, command: "cat; echo ran", input: "x\n",
			wantErr: "ssh test as nopass: cannot run the command as nopass: sudo: a password is required"},
		{name: "sudo is not installed", server: plain, ssh: SSH{Address: "test", User: "nobody"}, command: "echo ran",
			wantErr: "ssh test as nobody: cannot run the command as nobody: sudo is not installed on the host",
			skip:    noSudoSkip},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.skip != "" {
				t.Skip(tt.skip)
			}
			tt.ssh.ConfigFile = tt.server.ConfigFile
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var out Output
			var err error
			if tt.input == "" {
				out, err = tt.ssh.Run(ctx, tt.command)
			} else {
				out, err = tt.ssh.RunInput(ctx, tt.command, strings.NewReader(tt.input))
			}
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Run = %+v, %v; want the error %q", out, err, tt.wantErr)
				}
				if strings.Contains(out.Stdout, "ran") {
					t.Errorf("Run output = %+v, want the command not run", out)
				}
				return
			}
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if out.Stdout != tt.want || out.ExitCode != 0 {
				t.Errorf("Run = %+v, want exit code 0 and stdout %q", out, tt.want)
			}
		})
	}
	t.Cleanup(func() {
		data, _ := os.ReadFile(sudoLog)
		for _, line := range strings.Fields(string(data)) {
			if line == login {
				t.Errorf("sudo was used to run as the login user %s; want no sudo then", login)
			}
		}
	})
}

// fakeSudo writes a stand-in for sudo -n -u USER -- COMMAND... into a new
// directory, which it returns with the file where each use is logged: it
// refuses the user nopass as sudo does without a password, and runs the
// command as any other user through runuser.
func fakeSudo(t *testing.T) (bin, log string) {
	t.Helper()
	bin = t.TempDir()
	log = filepath.Join(bin, "sudo.log")
	writeFile(t, filepath.Join(bin, "sudo"), `#!/bin/sh
# A stand-in for sudo -n -u USER -- COMMAND...
[ "$1" = -n ] && [ "$2" = -u ] && [ "$4" = -- ] || { echo "fake sudo: unexpected arguments: $*" >&2; exit 2; }
echo "$3" >> `+ShellQuote(log)+`
case $3 in
nopass) echo "sudo: a password is required" >&2; exit 1;;
esac
user=$3
shift 4
exec runuser -u "$user" -- "$@"
`)
	if err := os.Chmod(filepath.Join(bin, "sudo"), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, log
}

func needRootAndRunuser(runuserErr error) string {
	switch {
	case os.Geteuid() != 0:
		return "the stand-in sudo needs root to change user"
	case runuserErr != nil:
		return "the stand-in sudo needs runuser: " + runuserErr.Error()
	}
	return ""
}

// TestSSHRunCapsOutput checks the cap on output, and that the exit status
// is still read when stderr runs past the cap.
func TestSSHRunCapsOutput(t *testing.T) {
	t.Parallel()
	server := startSSHD(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	command := fmt.Sprintf("head -c %d /dev/zero | tr '\\0' x; head -c %d /dev/zero | tr '\\0' y >&2; exit 6", maxOutput+1000, 3*maxOutput)
	out, err := sshTo(server).Run(ctx, command)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	wantOut := strings.Repeat("x", maxOutput) + "\n[1000 more bytes not kept]"
	wantErr := strings.Repeat("y", maxOutput) + fmt.Sprintf("\n[%d more bytes not kept]", 2*maxOutput)
	if out.Stdout != wantOut {
		t.Errorf("kept %d bytes of stdout ending %q, want %d ending %q", len(out.Stdout), tail(out.Stdout), len(wantOut), tail(wantOut))
	}
	if out.Stderr != wantErr {
		t.Errorf("kept %d bytes of stderr ending %q, want %d ending %q", len(out.Stderr), tail(out.Stderr), len(wantErr), tail(wantErr))
	}
	if out.ExitCode != 6 {
		t.Errorf("ExitCode = %d, want 6", out.ExitCode)
	}
}
