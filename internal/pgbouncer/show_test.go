package pgbouncer

import (
	"errors"
	"reflect"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// databaseColumns are SHOW DATABASES' columns in PgBouncer 1.18.
var databaseColumns = []string{"name", "host", "port", "database", "force_user", "pool_size", "min_pool_size",
	"reserve_pool", "pool_mode", "max_connections", "current_connections", "paused", "disabled"}

func TestParseDatabases(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      table
		want    Databases
		wantErr string
	}{
		{
			name: "PgBouncer 1.18",
			in: table{command: "SHOW DATABASES", columns: databaseColumns, rows: [][]string{
				{"app", "10.0.0.1", "5432", "app", "", "20", "0", "0", "transaction", "0", "1", "1", "0"},
				{"app_ro", "10.0.0.2", "5433", "app", "", "20", "0", "0", "", "0", "0", "0", "1"},
				{"pgbouncer", "", "6432", "pgbouncer", "pgbouncer", "2", "0", "0", "statement", "0", "0", "0", "0"},
			}},
			want: Databases{
				{Name: "app", Host: "10.0.0.1", Port: "5432", Database: "app", PoolMode: "transaction", Paused: true},
				{Name: "app_ro", Host: "10.0.0.2", Port: "5433", Database: "app", Disabled: true},
				{Name: "pgbouncer", Port: "6432", Database: "pgbouncer", PoolMode: "statement"},
			},
		},
		{
			name: "columns by name, in any order, optional ones missing",
			in: table{command: "SHOW DATABASES", columns: []string{"paused", "port", "name", "host"}, rows: [][]string{
				{"0", "5432", "app", "/tmp"},
			}},
			want: Databases{{Name: "app", Host: "/tmp", Port: "5432"}},
		},
		{
			name:    "no paused column",
			in:      table{command: "SHOW DATABASES", columns: []string{"name", "host", "port"}},
			wantErr: "SHOW DATABASES has no paused column",
		},
		{
			name:    "no host and port columns",
			in:      table{command: "SHOW DATABASES", columns: []string{"name", "paused"}},
			wantErr: "SHOW DATABASES has no host and port columns",
		},
		{
			name: "no rows",
			in:   table{command: "SHOW DATABASES", columns: databaseColumns},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseDatabases(tt.in)
			wantParsed(t, got, err, tt.want, tt.wantErr)
		})
	}
}

// wantParsed fails the test unless a parse returned want, or failed with
// wantErr when that is set.
func wantParsed[T any](t *testing.T, got T, err error, want T, wantErr string) {
	t.Helper()
	switch {
	case wantErr != "":
		if err == nil || err.Error() != wantErr {
			t.Fatalf("error = %v, want %q", err, wantErr)
		}
	case err != nil:
		t.Fatal(err)
	case !reflect.DeepEqual(got, want):
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestDatabasesEntry(t *testing.T) {
	t.Parallel()
	dbs := Databases{{Name: "app", Port: "5432"}, {Name: "app_ro", Port: "5433"}}
	if d, err := dbs.Entry("app_ro"); err != nil || d.Port != "5433" {
		t.Errorf("Entry(app_ro) = %+v, %v", d, err)
	}
	if _, err := dbs.Entry("other"); err == nil || err.Error() != "SHOW DATABASES has no entry other" {
		t.Errorf("Entry(other) error = %v", err)
	}
}

func TestParseUsers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      table
		want    []User
		wantErr string
	}{
		{
			name: "PgBouncer 1.18",
			in: table{command: "SHOW USERS", columns: []string{"name", "pool_mode"}, rows: [][]string{
				{"app", "session"}, {"postgres", ""},
			}},
			want: []User{{Name: "app", PoolMode: "session"}, {Name: "postgres"}},
		},
		{
			name: "before 1.14: no pool_mode",
			in:   table{command: "SHOW USERS", columns: []string{"name"}, rows: [][]string{{"app"}}},
			want: []User{{Name: "app"}},
		},
		{
			name:    "no name column",
			in:      table{command: "SHOW USERS", columns: []string{"pool_mode"}},
			wantErr: "SHOW USERS has no name column",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseUsers(tt.in)
			wantParsed(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func TestParseConfig(t *testing.T) {
	t.Parallel()
	in := table{command: "SHOW CONFIG", columns: []string{"key", "value", "default", "changeable"}, rows: [][]string{
		{"pool_mode", "transaction", "session", "yes"},
		{"listen_port", "6432", "6432", "no"},
	}}
	got, err := parseConfig(in)
	wantParsed(t, got, err, Config{"pool_mode": "transaction", "listen_port": "6432"}, "")
	got, err = parseConfig(table{command: "SHOW CONFIG", columns: []string{"key"}})
	wantParsed(t, got, err, nil, "SHOW CONFIG has no value column")
}

func TestParseState(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		rows [][]string
		want State
	}{
		{"running", [][]string{{"active", "yes"}, {"paused", "no"}, {"suspended", "no"}}, State{Known: true}},
		{"paused", [][]string{{"active", "yes"}, {"paused", "yes"}, {"suspended", "no"}}, State{Known: true, Paused: true}},
		{"suspended", [][]string{{"suspended", "yes"}, {"short"}}, State{Known: true, Suspended: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := parseState(table{command: "SHOW STATE", columns: []string{"key", "value"}, rows: tt.rows}); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCommand(t *testing.T) {
	t.Parallel()
	if got := Command("PAUSE", "app"); got != "PAUSE app" {
		t.Errorf("Command(PAUSE, app) = %q", got)
	}
	if got := Command("RESUME", ""); got != "RESUME" {
		t.Errorf("Command(RESUME, \"\") = %q", got)
	}
}

func TestNotPaused(t *testing.T) {
	t.Parallel()
	refused := &pgconn.PgError{Severity: "ERROR", Code: "08P01", Message: "database app is not paused"}
	if !NotPaused(refused) || !NotPaused(errors.Join(errors.New("RESUME app"), refused)) {
		t.Error("NotPaused misses PgBouncer's refusal")
	}
	if NotPaused(errors.New("not paused")) || NotPaused(nil) {
		t.Error("NotPaused takes an error that is not PgBouncer's")
	}
}
