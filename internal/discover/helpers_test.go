package discover

import (
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/pg"
)

// TestNoPasswordWritten: a password given in a connection string is used
// to connect, said to be left out, and never in a conninfo written out.
func TestNoPasswordWritten(t *testing.T) {
	const secret = "s3cret-Passw0rd"
	tests := []struct {
		name, conninfo string
		wantNote       bool
	}{
		{"key/value", "host=10.0.0.1 port=5433 user=postgres password=" + secret + " dbname=postgres connect_timeout=7", true},
		{"quoted", "host=10.0.0.1 port=5433 user=postgres password='" + secret + "' dbname=postgres", true},
		{"uri", "postgresql://postgres:" + secret + "@10.0.0.1:5433/postgres?sslmode=disable", true},
		{"none", "host=10.0.0.1 port=5433 user=postgres dbname=postgres", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PGPASSWORD", "")
			var notes []string
			w, err := newWalker(Options{Conninfo: tc.conninfo, Note: func(m string) { notes = append(notes, m) }})
			if err != nil {
				t.Fatal(err)
			}
			if got := len(notes) > 0; got != tc.wantNote {
				t.Errorf("notes %q, want a note: %t", notes, tc.wantNote)
			}
			for _, n := range notes {
				if strings.Contains(n, secret) {
					t.Errorf("the note shows the password: %q", n)
				}
			}
			written := w.conninfoAt("10.0.0.2", 5434)
			if strings.Contains(written, secret) || strings.Contains(written, "password") {
				t.Errorf("written conninfo %q holds a password", written)
			}
			if !strings.HasPrefix(written, "host=10.0.0.2 port=5434 user=postgres dbname=postgres") {
				t.Errorf("written conninfo %q: want the other node's host and port, the given user and database", written)
			}
			if tc.wantNote && !strings.Contains(w.dialAt("10.0.0.2", 5434), secret) {
				t.Error("the given password is not used to connect to the other nodes")
			}
		})
	}
}

func TestConnectTimeoutKept(t *testing.T) {
	t.Parallel()
	w, err := newWalker(Options{Conninfo: "host=h port=5 user=u dbname=d sslmode=disable connect_timeout=7", Note: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := w.conninfoAt("h2", 6), "host=h2 port=6 user=u dbname=d sslmode=disable connect_timeout=7"; got != want {
		t.Errorf("conninfoAt = %q, want %q", got, want)
	}
}

func TestFit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		guessed  bool
	}{
		{"pg2", "pg2", false},
		{"db-2.example", "db-2.example", false},
		{"PG2", "pg2", true},
		{"15/main", "15-main", true},
		{"--", "", false},
		{"", "", false},
	}
	for _, tc := range tests {
		v := fit(tc.in, "x")
		if v.Text != tc.want || (v.Guessed != "") != tc.guessed {
			t.Errorf("fit(%q) = %+v, want %q guessed %t", tc.in, v, tc.want, tc.guessed)
		}
	}
}

func TestSSHPattern(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"admin":          "admin@{host}",
		"admin@":         "admin@{host}",
		"admin@{host}":   "admin@{host}",
		"{name}":         "{name}",
		"root@bastion":   "root@bastion",
		"admin@{host}:2": "admin@{host}:2",
	} {
		if got := sshPattern(in); got != want {
			t.Errorf("sshPattern(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNaturalOrder(t *testing.T) {
	t.Parallel()
	names := []string{"pg10", "pg2", "db1", "pg1"}
	want := []string{"db1", "pg1", "pg2", "pg10"}
	for i := range names {
		for j := range names {
			if (naturalCompare(names[i], names[j]) < 0) != (indexOf(want, names[i]) < indexOf(want, names[j])) {
				t.Errorf("naturalCompare(%q, %q) = %d", names[i], names[j], naturalCompare(names[i], names[j]))
			}
		}
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func TestPortList(t *testing.T) {
	t.Parallel()
	if got, want := portList([]uint16{5433, 5432, 5434, 6432, 5436}), "5432-5434, 5436, 6432"; got != want {
		t.Errorf("portList = %q, want %q", got, want)
	}
}

// TestPortsTried: the known ports first, then the operator's or the
// neighbours, nearest first, never where a node already is.
func TestPortsTried(t *testing.T) {
	t.Parallel()
	w := &walker{o: Options{}}
	w.members = []*member{{host: "127.0.0.1", port: 5500, f: &facts{}}}
	got := w.ports(t.Context(), "127.0.0.1")
	if got[0] != 5432 || got[1] != 5501 || got[2] != 5499 || len(got) != 1+2*NeighbourPorts+2*NeighbourPorts {
		t.Errorf("ports = %v", got)
	}
	for _, p := range got {
		if p == 5500 {
			t.Errorf("ports %v try 5500, where a node already is", got)
		}
	}
	w.o.Ports = []int{6000, 6001}
	if got := w.ports(t.Context(), "10.1.1.1"); len(got) != 4 || got[0] != 5500 || got[2] != 6000 {
		t.Errorf("ports with --ports = %v", got)
	}
}

// TestNamesWithoutManager: a standby is named as it streams, the primary
// after the slot kept for it, or after its siblings; a generic name is
// not a name.
func TestNamesWithoutManager(t *testing.T) {
	t.Parallel()
	primary := &member{host: "127.0.0.1", port: 5001, f: &facts{State: pg.State{Role: pg.RolePrimary},
		Slots: []pg.ReplicationSlot{{Name: "pg1", Type: "physical"}, {Name: "pg2", Type: "physical", Active: true}, {Name: "pg3", Type: "physical", Active: true}}}}
	pg2 := &member{host: "127.0.0.1", port: 5002, f: &facts{State: pg.State{Role: pg.RoleStandby, SlotName: "pg2"}},
		upstream: primary, sender: &pg.WALSender{App: "pg2", SlotName: "pg2"}}
	pg3 := &member{host: "127.0.0.1", port: 5003, f: &facts{State: pg.State{Role: pg.RoleStandby, SlotName: "pg3"}},
		upstream: primary, sender: &pg.WALSender{App: "walreceiver", SlotName: "pg3"}}
	w := &walker{members: []*member{primary, pg2, pg3}}
	w.nameMembers()
	for _, tc := range []struct {
		m       *member
		want    string
		guessed bool
	}{{primary, "pg1", true}, {pg2, "pg2", false}, {pg3, "pg3", true}} {
		if tc.m.name.Text != tc.want || (tc.m.name.Guessed != "") != tc.guessed {
			t.Errorf("name %+v, want %s guessed %t", tc.m.name, tc.want, tc.guessed)
		}
	}
	// No slot left for the primary: the series its standbys' names leave.
	primary.f.Slots = nil
	pg3.sender.App = "pg3"
	for _, m := range w.members {
		m.name = Value{}
	}
	w.nameMembers()
	if primary.name.Text != "pg1" || !strings.Contains(primary.name.Guessed, "siblings") {
		t.Errorf("primary named %+v, want pg1 after its siblings", primary.name)
	}
}

func TestParseTimeout(t *testing.T) {
	t.Parallel()
	if got := connectTimeout("host=h connect_timeout=3"); got != 3*time.Second {
		t.Errorf("connectTimeout = %s", got)
	}
}
