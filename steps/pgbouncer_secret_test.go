package steps

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/sandbox"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

// TestRepointPoolerPasswordInNoCommandLine: a pgbouncer.ini whose
// [databases] entry carries password=, as many operators' do, is
// repointed there and back, on this host and on a host of its own over
// ssh (with sudo to the servers' user), while every new process's command
// line is read as often as it can be. The password is in none of them;
// the file keeps its password line with only the server changed; and
// PgBouncer sends clients to the node it was repointed to. Not parallel:
// the scan runs while nothing else of this package does.
func TestRepointPoolerPasswordInNoCommandLine(t *testing.T) {
	for _, c := range []struct {
		name string
		up   func(testing.TB, int) *sandbox.Sandbox
	}{
		{name: "this host", up: sandboxtest.New},
		{name: "hosts of their own", up: sandboxtest.NewHosts},
	} {
		t.Run(c.name, func(t *testing.T) {
			repointKeepsPasswordOffCommandLines(t, c.up(t, 1))
		})
	}
}

func repointKeepsPasswordOffCommandLines(t *testing.T, sb *sandbox.Sandbox) {
	nonce := make([]byte, 6)
	_, _ = rand.Read(nonce)
	secret := "Pooler-Pw-" + hex.EncodeToString(nonce)
	pg1, _ := sb.Node("pg1")
	pg2, _ := sb.Node("pg2")
	entry := func(n sandbox.Node) string {
		return fmt.Sprintf("app = host=%s port=%d dbname=app user=postgres password=%s", sb.Addr(n.Name), n.Port, secret)
	}
	path := sb.PoolerConfig()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	plain := poolerEntry(t, sb)
	if want := fmt.Sprintf("app = host=%s port=%d dbname=app", sb.Addr("pg1"), pg1.Port); plain != want {
		t.Fatalf("the sandbox's entry is %q, want %q", plain, want)
	}
	// The operator's file: the entry carries the password, and PgBouncer
	// has read it.
	onPg1 := strings.Replace(string(before), plain, entry(pg1), 1)
	onPg2 := strings.Replace(string(before), plain, entry(pg2), 1)
	if err := os.WriteFile(path, []byte(onPg1), 0o640); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, time.Minute)
	admin, err := pgAdmin(ctx, sb)
	if err != nil {
		t.Fatal(err)
	}
	_, err = admin.Exec(ctx, "RELOAD")
	closeConn(admin)
	if err != nil {
		t.Fatalf("RELOAD: %v", err)
	}
	routesTo(t, sb, pg1)

	// The repoint's write names the temp file beside the configuration:
	// a scan that saw it saw the write.
	scan := sandboxtest.ScanCmdlines(secret, path+".switchover.")
	tg, p := sandboxTarget(sb)
	for _, to := range []struct {
		node sandbox.Node
		file string
	}{{pg2, onPg2}, {pg1, onPg1}, {pg2, onPg2}, {pg1, onPg1}} {
		out, err := apply(t, tg, p, "pgbouncer.repoint", map[string]string{"to": to.node.Name})
		if err != nil {
			scan.Finish()
			t.Fatalf("repoint to %s: %v", to.node.Name, err)
		}
		for _, l := range out {
			if strings.Contains(l, secret) {
				t.Errorf("the repoint printed the password: %s", strings.ReplaceAll(l, secret, "********"))
			}
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != to.file {
			t.Errorf("after the repoint to %s the file holds\n%s\nwant\n%s", to.node.Name, mask(string(got), secret), mask(to.file, secret))
		}
		routesTo(t, sb, to.node)
	}
	hits, scans, sawWrite := scan.Finish()
	t.Logf("%d scans of every command line, %d of them saw the write of %s", scans, sawWrite, path)
	if sawWrite == 0 {
		t.Fatalf("%d scans never saw the write of %s: the scan did not watch it", scans, path)
	}
	if len(hits) > 0 {
		t.Fatalf("the pooler's password is in %d command lines:\n%s", len(hits), strings.Join(hits, "\n"))
	}
}

// routesTo waits until a new client connection through the sandbox's
// PgBouncer reaches node n.
func routesTo(t *testing.T, sb *sandbox.Sandbox, n sandbox.Node) {
	t.Helper()
	eventually(t, 15*time.Second, "pgbouncer routes app to "+n.Name, func() (bool, string) {
		var server string
		if err := clientQuery(sb, 5*time.Second, "SELECT host(inet_server_addr()) || ':' || current_setting('port')", &server); err != nil {
			return false, err.Error()
		}
		return server == net.JoinHostPort(sb.Addr(n.Name), strconv.Itoa(n.Port)), "the server at " + server
	})
}

// mask hides secret in s, for messages.
func mask(s, secret string) string { return strings.ReplaceAll(s, secret, "********") }
