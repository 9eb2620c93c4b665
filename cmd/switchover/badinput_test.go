package main

// Bad input given to the real binary: a connection string that cannot be
// read, a host name that does not resolve, a node that accepts connections
// and never answers, a wrong password. Each ends with a message that says
// where and what, the documented exit code, no stack trace, and nothing
// changed.

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/internal/testbin"
	"github.com/switchover/switchover/internal/transport"
)

const playbook = "postgres-streaming-switchover"

// assertNoStackTrace fails when the output looks like a Go panic.
func assertNoStackTrace(t *testing.T, what string, r testbin.Result) {
	t.Helper()
	for _, bad := range []string{"goroutine ", "panic"} {
		if strings.Contains(r.Stderr, bad) {
			t.Fatalf("%s: stderr has %q (a stack trace?):\n%s", what, bad, r)
		}
	}
}

// assertNoActionRan fails unless every journal under jdir shows no action
// other than the finally section's no-ops ran: the run stopped before it
// changed anything.
func assertNothingChanged(t *testing.T, what string, r testbin.Result) {
	t.Helper()
	assertContains(t, what, r.Stdout, "this step changed nothing")
	if strings.Contains(r.Stdout, "point of no return passed") {
		t.Fatalf("%s: the run went past the point of no return:\n%s", what, r)
	}
}

// sandboxInventory returns the sandbox's inventory with node's conninfo
// replaced by conninfo ("" keeps it), the primary named (the first node),
// without the pooler section when direct is set, written to a new file.
func sandboxInventory(t *testing.T, sb *sandbox.Sandbox, direct bool, conninfo map[string]string) string {
	t.Helper()
	b, err := os.ReadFile(sb.Inventory())
	if err != nil {
		t.Fatal(err)
	}
	// These tests judge how the run's own checks meet a bad node, so the
	// inventory names the primary (as the sandbox's did before the primary
	// was found in the cluster): given, it is not looked for.
	src := strings.Replace(string(b), "vars:\n", "vars:\n  primary: "+sb.Nodes[0].Name+"\n", 1)
	for name, ci := range conninfo {
		n, ok := sb.Node(name)
		if !ok {
			t.Fatalf("no node %s in the sandbox", name)
		}
		old := fmt.Sprintf("%q", sb.Conninfo(n, "postgres"))
		if !strings.Contains(src, old) {
			t.Fatalf("the sandbox inventory has no %s:\n%s", old, src)
		}
		src = strings.Replace(src, old, fmt.Sprintf("%q", ci), 1)
	}
	if direct {
		if i := strings.Index(src, "\npooler:"); i >= 0 {
			src = src[:i+1]
		}
	}
	inv := filepath.Join(t.TempDir(), "inventory.yaml")
	writeFile(t, inv, src)
	return inv
}

// TestBadInputConninfo: a connection string pgx cannot read is an error in
// the inventory, found before anything runs: file:line:col, the node, what
// is wrong, exit 2, and never the password it carries.
func TestBadInputConninfo(t *testing.T) {
	t.Parallel()
	work, jdir := t.TempDir(), t.TempDir()
	inv := filepath.Join(work, "inventory.yaml")
	writeFile(t, inv, `cluster: bad
vars:
  primary: pg1
  candidate: pg2
nodes:
  pg1:
    conninfo: "host=127.0.0.1 port=notaport user=postgres password=Hidden-Pw-777"
    host: local
  pg2:
    conninfo: "host=127.0.0.1 port=1 user=postgres"
    host: local
`)
	for _, args := range [][]string{
		{"run", playbook, "-i", inv, "--yes", "--journal-dir", jdir},
		{"plan", playbook, "-i", inv, "--journal-dir", jdir},
		{"validate", playbook, "-i", inv},
	} {
		verb := args[0]
		r := mustRun(t, 2, work, args...)
		assertContains(t, verb, r.Stderr, inv+":7:15:", `node "pg1"`, "conninfo", "invalid port")
		assertNoStackTrace(t, verb, r)
		if strings.Contains(r.Output(), "Hidden-Pw-777") {
			t.Fatalf("%s: the password is in the output:\n%s", verb, r)
		}
	}
	if j := testbin.NewestJournal(t, jdir); j != "" {
		t.Fatalf("an invalid inventory started a run: %s", j)
	}
}

// silentListener accepts TCP connections and never writes a byte; it
// counts the connections it accepted.
type silentListener struct {
	ln       net.Listener
	accepted atomic.Int64
}

func newSilentListener(t *testing.T) *silentListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &silentListener{ln: ln}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				for _, c := range conns {
					c.Close()
				}
				return
			}
			s.accepted.Add(1)
			conns = append(conns, c) // held open, never answered
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return s
}

func (s *silentListener) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// TestBadInputNodes: nodes the inventory names that cannot be reached. The
// candidate is a real standby, so every failure is the bad node's.
func TestBadInputNodes(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.New(t, 1)
	work := t.TempDir()

	t.Run("Unresolvable host", func(t *testing.T) {
		jdir := t.TempDir()
		inv := sandboxInventory(t, sb, true, map[string]string{
			"pg1": "host=no-such-host.invalid port=5432 user=postgres dbname=postgres sslmode=disable connect_timeout=5",
		})
		r := mustRun(t, 3, work, "run", playbook, "-i", inv, "--yes", "--journal-dir", jdir)
		assertContains(t, "unresolvable host", r.Stderr, "pg1", `"no-such-host.invalid" did not resolve`)
		assertNoStackTrace(t, "unresolvable host", r)
		assertNothingChanged(t, "unresolvable host", r)
	})

	t.Run("Silent node", func(t *testing.T) {
		jdir := t.TempDir()
		silent := newSilentListener(t)
		inv := sandboxInventory(t, sb, true, map[string]string{
			"pg1": fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable connect_timeout=2", silent.port()),
		})
		began := time.Now()
		p := start(t, work, "run", playbook, "-i", inv, "--yes", "--journal-dir", jdir)
		r := p.WaitWithin(20 * time.Second)
		took := time.Since(began)
		if r.Code != 3 {
			t.Fatalf("silent node: want exit 3, got %s", r)
		}
		if took > 15*time.Second {
			t.Errorf("silent node: the run took %s; every check has a bound well below", took)
		}
		assertContains(t, "silent node", r.Stderr, "pg1")
		assertNoStackTrace(t, "silent node", r)
		assertNothingChanged(t, "silent node", r)
		if n := silent.accepted.Load(); n == 0 || n > 20 {
			t.Errorf("silent node: %d connections to the silent node; want a handful (each check bounded, no pile-up)\n%s", n, r)
		}
		t.Logf("silent node: run ended in %s after %d connections", took.Round(time.Millisecond), silent.accepted.Load())
	})
}

const (
	rightPassword = "S3cret-Pw-42xyz"
	wrongPassword = "WrongPw-1234"
)

// protectWithPassword gives user postgres rightPassword and makes every
// node ask for it (scram-sha-256) on ordinary connections; replication
// keeps trust so that streaming goes on. PgBouncer logs in with the
// password from its auth_file.
func protectWithPassword(t *testing.T, sb *sandbox.Sandbox) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pg.Connect(ctx, sb.Conninfo(sb.Nodes[0], "postgres"), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "SET password_encryption = 'scram-sha-256'"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER USER postgres PASSWORD '%s'", rightPassword)); err != nil {
		t.Fatal(err)
	}
	as := transport.Local{User: sb.RunAs}
	hba := "# switchover test: a password for ordinary connections, trust for replication\n" +
		"host all all 127.0.0.1/32 scram-sha-256\nhost replication all 127.0.0.1/32 trust\n"
	for _, n := range sb.Nodes {
		path := filepath.Join(n.DataDir, "pg_hba.conf")
		out, err := as.Run(ctx, fmt.Sprintf("printf '%%s' '%s' > '%s'", hba, path))
		if err != nil || out.ExitCode != 0 {
			t.Fatalf("write %s: %v %s", path, err, out.Combined())
		}
		c, err := pg.Connect(ctx, sb.Conninfo(n, "postgres")+" password="+rightPassword, 10*time.Second)
		if err != nil {
			t.Fatalf("connect %s: %v", n.Name, err)
		}
		_, err = c.Exec(ctx, "SELECT pg_reload_conf()")
		c.Close(context.Background())
		if err != nil {
			t.Fatal(err)
		}
	}
	// The reload takes effect at once for new connections; make sure.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := pg.Connect(ctx, sb.Conninfo(sb.Nodes[0], "postgres")+" password=nope-nope", 5*time.Second)
		if err != nil {
			break
		}
		c.Close(context.Background())
		if time.Now().After(deadline) {
			t.Fatal("pg_hba.conf: a wrong password is still let in after the reload")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The standbys know the password once they have replayed the ALTER
	// USER: under load that can come after the reload of their pg_hba.conf.
	for _, n := range sb.Nodes[1:] {
		for {
			c, err := pg.Connect(ctx, sb.Conninfo(n, "postgres")+" password="+rightPassword, 5*time.Second)
			if err == nil {
				c.Close(context.Background())
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the password is still refused: %v", n.Name, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// PgBouncer (trust for its clients) logs into PostgreSQL with the
	// password of its auth_file.
	userlist := filepath.Join(filepath.Dir(sb.PoolerConfig()), "userlist.txt")
	out, err := as.Run(ctx, fmt.Sprintf(`printf '"postgres" "%s"\n' > '%s'`, rightPassword, userlist))
	if err != nil || out.ExitCode != 0 {
		t.Fatalf("write %s: %v %s", userlist, err, out.Combined())
	}
	admin, err := pg.ConnectAdmin(ctx, sb.AdminConninfo())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, "RELOAD"); err != nil {
		t.Fatal(err)
	}
}

// TestBadInputWrongPassword: a wrong password in the inventory is named as
// such, for the node, and the password itself is shown nowhere.
func TestBadInputWrongPassword(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.New(t, 1)
	protectWithPassword(t, sb)
	work, jdir := t.TempDir(), t.TempDir()
	pg1 := sb.Nodes[0]
	inv := sandboxInventory(t, sb, false, map[string]string{
		"pg1": sb.Conninfo(pg1, "postgres") + " password=" + wrongPassword,
		"pg2": sb.Conninfo(sb.Nodes[1], "postgres") + " password=" + rightPassword,
	})
	r := mustRun(t, 3, work, "plan", playbook, "-i", inv, "--journal-dir", jdir)
	assertContains(t, "wrong password", r.Output(), "pg1", "password authentication failed")
	assertNoStackTrace(t, "wrong password", r)
	assertSecretNowhere(t, wrongPassword, r, jdir)
	assertSecretNowhere(t, rightPassword, r, jdir)
}

// assertSecretNowhere fails if secret is in the output or in any file
// under jdir.
func assertSecretNowhere(t *testing.T, secret string, r testbin.Result, jdir string) {
	t.Helper()
	if strings.Contains(r.Stdout, secret) || strings.Contains(r.Stderr, secret) {
		t.Errorf("the password %q is in the output:\n%s", secret, r)
	}
	err := filepath.Walk(jdir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), secret) {
			for _, line := range strings.Split(string(b), "\n") {
				if strings.Contains(line, secret) {
					t.Errorf("the password %q is in %s: %s", secret, path, line)
					break
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
