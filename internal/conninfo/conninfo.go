// Package conninfo is switchover's one model of a libpq connection string.
// Every connection string the tool reads (a node's, the pooler's admin
// console) is resolved here with pgx's own parser, so services, URIs, PG*
// variables and pgpass mean what they mean to psql; and every connection
// string the tool writes onto a server (primary_conninfo, pg_rewind's
// source, PgBouncer's [databases] entry) is rendered here from the resolved
// values, never with a password and never with a service the server may
// not know.
package conninfo

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/switchover/switchover/internal/secret"
)

// SysConfDir is where libpq looks for the system-wide service file
// (pg_service.conf) when PGSYSCONFDIR is not set: the directory Debian's
// libpq is built with.
const SysConfDir = "/etc/postgresql-common"

// Resolved is a connection string resolved to the one server it names, as
// libpq would resolve it on this machine. It keeps the password only to
// connect from this process: String never renders it.
type Resolved struct {
	Host     string // host name, address, or Unix socket directory
	Port     uint16
	User     string
	Database string
	// SSLMode is libpq's sslmode as pgx understood it (disable, allow,
	// prefer, require, verify-ca, verify-full); "" for a Unix socket.
	SSLMode string
	// SSLCRL is the certificate revocation list file, when one is given.
	SSLCRL string
	// ApplicationName is the session's name, when one is given.
	ApplicationName string

	password string
}

// Effective returns s as pgx must be given it to find a service where
// libpq finds it. libpq reads PGSERVICEFILE or ~/.pg_service.conf first and,
// when the service is not there, PGSYSCONFDIR/pg_service.conf; pgx reads
// only the first. When s does not resolve as it is and the system file
// exists, s names that file (pgx's servicefile keyword) if that resolves.
func Effective(s string) string {
	if _, err := pgconn.ParseConfig(s); err == nil {
		return s
	}
	dir := os.Getenv("PGSYSCONFDIR")
	if dir == "" {
		dir = SysConfDir
	}
	file := filepath.Join(dir, "pg_service.conf")
	if _, err := os.Stat(file); err != nil {
		return s
	}
	var alt string
	if t := strings.TrimSpace(s); strings.HasPrefix(t, "postgres://") || strings.HasPrefix(t, "postgresql://") {
		sep := "?"
		if strings.Contains(t, "?") {
			sep = "&"
		}
		alt = t + sep + "servicefile=" + url.QueryEscape(file)
	} else {
		alt = s + " servicefile=" + Quote(file)
	}
	if _, err := pgconn.ParseConfig(alt); err != nil {
		return s
	}
	return alt
}

// Resolve reads s with pgx's parser (after Effective) and returns the
// server it names. It refuses a string that does not parse, or that names
// more than one server: a node is one server, and what the tool writes
// onto another server must name exactly that one. Its errors never quote
// s, which may hold a password.
func Resolve(s string) (Resolved, error) {
	cfg, err := pgconn.ParseConfig(Effective(s))
	if err != nil {
		return Resolved{}, Problem(s, err)
	}
	addrs := []string{address(cfg.Host, cfg.Port)}
	for _, f := range cfg.Fallbacks {
		if a := address(f.Host, f.Port); a != addrs[len(addrs)-1] {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) != 1 {
		return Resolved{}, fmt.Errorf("names %d servers (%s); a node's connection string must resolve to exactly one host and port",
			len(addrs), strings.Join(addrs, ", "))
	}
	r := Resolved{
		Host: cfg.Host, Port: cfg.Port, User: cfg.User, Database: cfg.Database,
		SSLMode:         sslMode(cfg),
		SSLCRL:          cfg.RuntimeParams["sslcrl"],
		ApplicationName: cfg.RuntimeParams["application_name"],
		password:        cfg.Password,
	}
	return r, nil
}

// Problem is why s cannot be read, without s itself: pgx quotes the string
// in its errors and masks only the password fields it recognises.
func Problem(s string, err error) error {
	var ce *pgconn.ParseConfigError
	if errors.As(err, &ce) {
		msg := ce.Error()
		if i := strings.Index(msg, "`: "); strings.HasPrefix(msg, "cannot parse `") && i > 0 {
			msg = msg[i+len("`: "):]
		} else {
			msg = "unreadable"
		}
		return errors.New("cannot parse the connection string: " + secret.Redact(ce.ConnString, secret.Redact(s, msg)))
	}
	return errors.New(secret.Redact(s, err.Error()))
}

// address is host:port as pg_stat_wal_receiver, pg.Inspect and PgBouncer's
// SHOW DATABASES show a server (an IPv6 address unbracketed).
func address(host string, port uint16) string { return host + ":" + strconv.Itoa(int(port)) }

// Address is the server's host:port, as pg_stat_wal_receiver and
// PgBouncer's SHOW DATABASES show it.
func (r Resolved) Address() string { return address(r.Host, r.Port) }

// PortString is the port in decimal, as connection strings and PgBouncer
// write it.
func (r Resolved) PortString() string { return strconv.Itoa(int(r.Port)) }

// Socket reports whether the server is reached through a Unix socket.
func (r Resolved) Socket() bool { return strings.HasPrefix(r.Host, "/") }

// sslMode derives libpq's sslmode from the TLS attempts pgx planned: pgx
// keeps no sslmode, only one attempt per way it may connect.
func sslMode(cfg *pgconn.Config) string {
	if strings.HasPrefix(cfg.Host, "/") {
		return ""
	}
	tries := []*tls.Config{cfg.TLSConfig}
	for _, f := range cfg.Fallbacks {
		tries = append(tries, f.TLSConfig)
	}
	switch {
	case len(tries) > 1 && tries[0] == nil:
		return "allow"
	case len(tries) > 1:
		return "prefer"
	case tries[0] == nil:
		return "disable"
	case !tries[0].InsecureSkipVerify:
		return "verify-full"
	case tries[0].VerifyPeerCertificate != nil:
		return "verify-ca"
	}
	return "require"
}

// String renders the connection string a server is given: host, port,
// user, dbname, sslmode, sslcrl and application_name, each only when set,
// and never a password. The server's OS user authenticates with its own
// ~/.pgpass, or a passfile setting in its configuration.
func (r Resolved) String() string {
	var b strings.Builder
	add := func(k, v string) {
		if v == "" {
			return
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k + "=" + Quote(v))
	}
	add("host", r.Host)
	add("port", r.PortString())
	add("user", r.User)
	add("dbname", r.Database)
	add("sslmode", r.SSLMode)
	add("sslcrl", r.SSLCRL)
	add("application_name", r.ApplicationName)
	return b.String()
}

// Dial is String with the password, when one was resolved: what this
// process connects with. It is never shown, logged, or written anywhere.
func (r Resolved) Dial() string {
	if r.password == "" {
		return r.String()
	}
	return r.String() + " password=" + Quote(r.password)
}

// Password is the password resolved (from the string, PGPASSWORD or this
// user's pgpass), for this process to dial with; never shown or written.
func (r Resolved) Password() string { return r.password }

// HasPassword reports whether a password was resolved (from the string,
// PGPASSWORD or this user's pgpass).
func (r Resolved) HasPassword() bool { return r.password != "" }

// Quote renders v as a value of a keyword/value connection string, quoted
// only when it must be.
func Quote(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\n\r\f\v'\\") {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// ApplicationName is the name a WAL receiver gives its upstream, read from
// the connection string pg_stat_wal_receiver shows: its application_name,
// else its fallback_application_name; "" when neither is there or the
// string cannot be read here.
func ApplicationName(s string) string {
	cfg, err := pgconn.ParseConfig(Effective(s))
	if err != nil {
		return ""
	}
	if v := cfg.RuntimeParams["application_name"]; v != "" {
		return v
	}
	return cfg.RuntimeParams["fallback_application_name"]
}
