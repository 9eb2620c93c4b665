package conninfo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// isolate gives the test a home of its own and clears the PG* variables
// that would change how a string resolves, so only what the test sets
// counts. It returns the home directory.
func isolate(t *testing.T) string {
	home := t.TempDir()
	t.Setenv("HOME", home)
	for _, v := range []string{"PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD", "PGPASSFILE",
		"PGSERVICE", "PGSERVICEFILE", "PGSYSCONFDIR", "PGSSLMODE", "PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY", "PGAPPNAME",
		"PGCONNECT_TIMEOUT", "PGTARGETSESSIONATTRS", "PGOPTIONS"} {
		t.Setenv(v, "")
	}
	t.Setenv("PGSYSCONFDIR", filepath.Join(home, "no-such-dir"))
	return home
}

func write(t *testing.T, path, text string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const services = `[pg1]
host=10.0.0.1
port=5433
user=repl
dbname=app
sslmode=require

[pg2]
host=10.0.0.2
port=5434
user=repl
`

func TestResolve(t *testing.T) {
	tests := []struct {
		name    string
		env     func(t *testing.T, home string)
		in      string
		want    string // String()
		addr    string
		wantErr string
	}{
		{name: "keyword/value", in: "host=10.0.0.1 port=5432 user=repl dbname=postgres sslmode=disable application_name=x connect_timeout=5",
			want: "host=10.0.0.1 port=5432 user=repl dbname=postgres sslmode=disable application_name=x", addr: "10.0.0.1:5432"},
		{name: "quoted values", in: `host=db port=5432 user='a b' dbname='it\'s' sslmode=disable`,
			want: `host=db port=5432 user='a b' dbname='it\'s' sslmode=disable`, addr: "db:5432"},
		{name: "URI", in: "postgresql://repl:pw@10.0.0.2:5433/app?sslmode=require&application_name=y",
			want: "host=10.0.0.2 port=5433 user=repl dbname=app sslmode=require application_name=y", addr: "10.0.0.2:5433"},
		{name: "sslmode verify-full", in: "host=db user=u dbname=d sslmode=verify-full",
			want: "host=db port=5432 user=u dbname=d sslmode=verify-full", addr: "db:5432"},
		{name: "sslmode verify-ca", in: "host=db user=u dbname=d sslmode=verify-ca",
			want: "host=db port=5432 user=u dbname=d sslmode=verify-ca", addr: "db:5432"},
		{name: "sslmode allow", in: "host=db user=u dbname=d sslmode=allow",
			want: "host=db port=5432 user=u dbname=d sslmode=allow", addr: "db:5432"},
		{name: "sslmode prefer by default", in: "host=db user=u dbname=d",
			want: "host=db port=5432 user=u dbname=d sslmode=prefer", addr: "db:5432"},
		{name: "the revocation list is kept", in: "host=db user=u dbname=d sslmode=require sslcrl=/etc/pg/crl.pem",
			want: "host=db port=5432 user=u dbname=d sslmode=require sslcrl=/etc/pg/crl.pem", addr: "db:5432"},
		{name: "Unix socket has no sslmode", in: "host=/var/run/postgresql port=5433 user=u dbname=d",
			want: "host=/var/run/postgresql port=5433 user=u dbname=d", addr: "/var/run/postgresql:5433"},
		{name: "PG* variables fill what the string leaves out",
			env: func(t *testing.T, _ string) {
				t.Setenv("PGHOST", "10.0.0.7")
				t.Setenv("PGPORT", "6543")
				t.Setenv("PGUSER", "envuser")
				t.Setenv("PGDATABASE", "envdb")
				t.Setenv("PGSSLMODE", "disable")
			},
			in: "dbname=app", want: "host=10.0.0.7 port=6543 user=envuser dbname=app sslmode=disable", addr: "10.0.0.7:6543"},
		{name: "service through PGSERVICEFILE",
			env: func(t *testing.T, home string) {
				t.Setenv("PGSERVICEFILE", write(t, filepath.Join(home, "services.conf"), services))
			},
			in: "service=pg1", want: "host=10.0.0.1 port=5433 user=repl dbname=app sslmode=require", addr: "10.0.0.1:5433"},
		{name: "service through PGSYSCONFDIR only",
			env: func(t *testing.T, home string) {
				dir := filepath.Join(home, "etc")
				write(t, filepath.Join(dir, "pg_service.conf"), services)
				t.Setenv("PGSYSCONFDIR", dir)
			},
			in: "service=pg2 sslmode=disable", want: "host=10.0.0.2 port=5434 user=repl sslmode=disable", addr: "10.0.0.2:5434"},
		{name: "service as a URI parameter through PGSYSCONFDIR",
			env: func(t *testing.T, home string) {
				dir := filepath.Join(home, "etc")
				write(t, filepath.Join(dir, "pg_service.conf"), services)
				t.Setenv("PGSYSCONFDIR", dir)
			},
			in: "postgresql:///?service=pg1", want: "host=10.0.0.1 port=5433 user=repl dbname=app sslmode=require", addr: "10.0.0.1:5433"},
		{name: "the user's service file before the system's",
			env: func(t *testing.T, home string) {
				write(t, filepath.Join(home, ".pg_service.conf"), "[pg1]\nhost=10.9.9.9\nport=7000\nuser=mine\nsslmode=disable\n")
				dir := filepath.Join(home, "etc")
				write(t, filepath.Join(dir, "pg_service.conf"), services)
				t.Setenv("PGSYSCONFDIR", dir)
			},
			in: "service=pg1", want: "host=10.9.9.9 port=7000 user=mine sslmode=disable", addr: "10.9.9.9:7000"},
		{name: "a service not in the user's file, from the system's",
			env: func(t *testing.T, home string) {
				write(t, filepath.Join(home, ".pg_service.conf"), "[other]\nhost=10.9.9.9\n")
				dir := filepath.Join(home, "etc")
				write(t, filepath.Join(dir, "pg_service.conf"), services)
				t.Setenv("PGSYSCONFDIR", dir)
			},
			in: "service=pg2 sslmode=disable", want: "host=10.0.0.2 port=5434 user=repl sslmode=disable", addr: "10.0.0.2:5434"},
		{name: "unknown service", env: func(t *testing.T, home string) {
			t.Setenv("PGSERVICEFILE", write(t, filepath.Join(home, "services.conf"), services))
		}, in: "service=pg9 password=Secret-Pw-1", wantErr: "pg9"},
		{name: "several hosts", in: "host=db1,db2 port=5432,5433 user=u password=Secret-Pw-1", wantErr: "names 2 servers (db1:5432, db2:5433)"},
		{name: "several hosts in a URI", in: "postgresql://u:Secret-Pw-1@db1:5432,db2:5433/app", wantErr: "exactly one host and port"},
		{name: "bad port", in: "host=db port=x user=u password=Secret-Pw-1", wantErr: "invalid port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := isolate(t)
			if tt.env != nil {
				tt.env(t, home)
			}
			r, err := Resolve(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Resolve(%q) = %v, %v; want an error with %q", tt.in, r, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "Secret-Pw-1") {
					t.Errorf("the error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve(%q): %v", tt.in, err)
			}
			if got := r.String(); got != tt.want {
				t.Errorf("String() = %q\nwant %q", got, tt.want)
			}
			if got := r.Address(); got != tt.addr {
				t.Errorf("Address() = %q, want %q", got, tt.addr)
			}
			// What String renders resolves to the same server.
			if again, err := Resolve(r.String()); err != nil || again.String() != r.String() {
				t.Errorf("Resolve(String()) = %q, %v; want %q", again.String(), err, r.String())
			}
		})
	}
}

// TestPasswordNeverRendered: a password from the string, from PGPASSWORD
// or from the user's pgpass is kept for this process to dial with, and
// String never shows it.
func TestPasswordNeverRendered(t *testing.T) {
	tests := []struct {
		name string
		env  func(t *testing.T, home string)
		in   string
	}{
		{name: "in the string", in: "host=db user=u dbname=d password='Secret Pw-1'"},
		{name: "in a URI", in: "postgresql://u:Secret%20Pw-1@db/d"},
		{name: "PGPASSWORD", env: func(t *testing.T, _ string) { t.Setenv("PGPASSWORD", "Secret Pw-1") }, in: "host=db user=u dbname=d"},
		{name: "pgpass", env: func(t *testing.T, home string) {
			write(t, filepath.Join(home, ".pgpass"), "db:5432:d:u:Secret Pw-1\n")
		}, in: "host=db user=u dbname=d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := isolate(t)
			if tt.env != nil {
				tt.env(t, home)
			}
			r, err := Resolve(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if s := r.String(); strings.Contains(s, "Secret") || strings.Contains(s, "password") {
				t.Errorf("String() = %q shows the password", s)
			}
			if !r.HasPassword() || !strings.Contains(r.Dial(), `password='Secret Pw-1'`) {
				t.Errorf("Dial() lost the password (has %v)", r.HasPassword())
			}
		})
	}
}

func TestApplicationName(t *testing.T) {
	isolate(t)
	const base = "user=postgres password=******** dbname=replication host=127.0.0.1 port=5432 sslmode=disable"
	tests := []struct{ in, want string }{
		{base + " application_name=pg2 fallback_application_name=walreceiver", "pg2"},
		{base + " fallback_application_name=walreceiver", "walreceiver"},
		{base, ""},
		{"host='unterminated", ""},
	}
	for _, tt := range tests {
		if got := ApplicationName(tt.in); got != tt.want {
			t.Errorf("ApplicationName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestQuote(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"abc": "abc", "": "''", "a b": "'a b'", `it's`: `'it\'s'`, `a\b`: `'a\\b'`} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}
