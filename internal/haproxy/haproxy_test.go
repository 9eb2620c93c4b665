package haproxy

import (
	"bufio"
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A `show servers state postgres` of HAProxy 2.6: pg1 ready and up, pg2
// disabled in the configuration, pg3 disabled then set ready (the 0x04
// marker stays), and pg4 drained.
const serversState = `1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 postgres 1 pg1 127.0.0.1 2 0 1 1 10 6 3 4 6 0 0 0 - 27279 - 0 0 - - 0
3 postgres 2 pg2 127.0.0.1 0 5 1 1 10 1 0 4 14 0 0 0 - 27280 - 0 0 - - 0
3 postgres 3 pg3 127.0.0.1 2 4 1 1 10 6 3 4 6 0 0 0 - 27281 - 0 0 - - 0
3 postgres 4 pg4 127.0.0.1 2 8 1 1 10 6 3 4 6 0 0 0 - 27282 - 0 0 - - 0

`

func TestParseServersState(t *testing.T) {
	t.Parallel()
	srv, err := ParseServersState(serversState)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name     string
		state    AdminState
		op       OpState
		routable bool
	}{
		{"pg1", Ready, OpRunning, true},
		{"pg2", Maint, OpStopped, false},
		{"pg3", Ready, OpRunning, true},
		{"pg4", Drain, OpRunning, false},
	}
	if len(srv) != len(want) {
		t.Fatalf("got %d servers, want %d: %v", len(srv), len(want), srv)
	}
	for i, w := range want {
		s := srv[i]
		if s.Name != w.name || s.State() != w.state || s.Op != w.op || s.Routable() != w.routable || !s.Checked {
			t.Errorf("server %d = %s (routable %v, checked %v); want %s %s %s routable %v", i, s, s.Routable(), s.Checked, w.name, w.state, w.op, w.routable)
		}
	}
	if srv[0].Port != 27279 || srv[0].Addr != "127.0.0.1" {
		t.Errorf("pg1 at %s:%d", srv[0].Addr, srv[0].Port)
	}
	for _, bad := range []string{"Can't find backend.\n\n", "", "2\n# be_id\n"} {
		if _, err := ParseServersState(bad); err == nil {
			t.Errorf("ParseServersState(%q): no error", bad)
		}
	}
}

func TestParseStat(t *testing.T) {
	t.Parallel()
	ans := "# pxname,svname,qcur,qmax,scur,status,check_status,\n" +
		"postgres,FRONTEND,,,3,OPEN,,\n" +
		"postgres,pg1,0,0,2,UP,L4OK,\n" +
		"postgres,pg2,0,0,0,MAINT,,\n" +
		"other,pg1,0,0,9,DOWN,L4CON,\n" +
		"postgres,BACKEND,0,0,2,UP,,\n"
	st, err := ParseStat(ans, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 2 || st["pg1"] != (Stat{Status: "UP", Sessions: 2, Check: "L4OK"}) || st["pg2"].Status != "MAINT" {
		t.Errorf("stats = %+v", st)
	}
	if _, err := ParseStat("# pxname,svname\n", "postgres"); err == nil {
		t.Error("a stat without scur and status: no error")
	}
}

func TestParseSocket(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Socket
		wantErr bool
	}{
		{in: "unix:/run/haproxy/admin.sock", want: Socket{"unix", "/run/haproxy/admin.sock"}},
		{in: "tcp:127.0.0.1:9999", want: Socket{"tcp", "127.0.0.1:9999"}},
		{in: "tcp:[::1]:9999", want: Socket{"tcp", "[::1]:9999"}},
		{in: "/run/haproxy/admin.sock", wantErr: true},
		{in: "unix:relative.sock", wantErr: true},
		{in: "tcp:localhost", wantErr: true},
		{in: "udp:1.2.3.4:5", wantErr: true},
		{in: "unix:", wantErr: true},
	}
	for _, tc := range tests {
		got, err := ParseSocket(tc.in)
		if (err != nil) != tc.wantErr || (!tc.wantErr && got != tc.want) {
			t.Errorf("ParseSocket(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
		if !tc.wantErr && got.String() != tc.in {
			t.Errorf("ParseSocket(%q).String() = %q", tc.in, got)
		}
	}
}

func TestRemoteCommand(t *testing.T) {
	t.Parallel()
	got := RemoteCommand(Socket{"unix", "/run/haproxy/admin.sock"}, "set server pg/pg1 state maint")
	want := `printf '%s\n' 'set server pg/pg1 state maint' | socat -t 5 - UNIX-CONNECT:/run/haproxy/admin.sock`
	if got != want {
		t.Errorf("RemoteCommand = %s\nwant %s", got, want)
	}
}

// answering serves a unix socket that answers each command as answer
// says, one command per connection as HAProxy's runtime API does.
func answering(t *testing.T, answer func(cmd string) string) *Client {
	t.Helper()
	path := filepath.Join(t.TempDir(), "admin.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Write([]byte(answer(strings.TrimSuffix(line, "\n"))))
			c.Close()
		}
	}()
	return &Client{Socket: Socket{"unix", path}}
}

func TestClientCommands(t *testing.T) {
	t.Parallel()
	c := answering(t, func(cmd string) string {
		switch {
		case strings.HasPrefix(cmd, "set server postgres/nope"):
			return "No such server.\n\n"
		case strings.HasPrefix(cmd, "show servers state postgres"):
			return serversState
		case strings.HasPrefix(cmd, "show servers state"):
			return "Can't find backend.\n\n"
		}
		return "\n"
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.SetState(ctx, "postgres", "pg1", Maint); err != nil {
		t.Errorf("SetState: %v", err)
	}
	if err := c.SetState(ctx, "postgres", "nope", Ready); err == nil || !strings.Contains(err.Error(), "No such server.") {
		t.Errorf("SetState of an unknown server: %v; want HAProxy's answer", err)
	}
	if err := c.SetHealth(ctx, "postgres", "pg1", Up); err != nil {
		t.Errorf("SetHealth: %v", err)
	}
	if err := c.ShutdownSessions(ctx, "postgres", "pg1"); err != nil {
		t.Errorf("ShutdownSessions: %v", err)
	}
	if srv, err := c.Servers(ctx, "postgres"); err != nil || len(srv) != 4 {
		t.Errorf("Servers = %v, %v", srv, err)
	}
	if _, err := c.Servers(ctx, "other"); err == nil || !strings.Contains(err.Error(), "no such backend") {
		t.Errorf("Servers of an unknown backend: %v", err)
	}
	for _, bad := range []struct{ backend, server string }{{"postgres", "pg1; shutdown frontend x"}, {"a/b", "pg1"}, {"", "pg1"}} {
		if err := c.SetState(ctx, bad.backend, bad.server, Maint); err == nil {
			t.Errorf("SetState(%q, %q): no error", bad.backend, bad.server)
		}
	}
	if _, err := c.Command(ctx, "show info; show stat"); err == nil {
		t.Error("a command with a semicolon was sent")
	}
	if err := c.SetState(ctx, "postgres", "pg1", AdminState("up")); err == nil {
		t.Error("SetState up: no error")
	}
}

func TestClientBoundedWhenTheSocketDoesNotAnswer(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "admin.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			defer c.Close()
			time.Sleep(10 * time.Second)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = (&Client{Socket: Socket{"unix", path}}).Command(ctx, "show info")
	if err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("Command on a silent socket: %v after %s; want an error at the deadline", err, time.Since(start))
	}
}
