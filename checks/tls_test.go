package checks

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/params"
)

// serveTLS serves cert over tls on 127.0.0.1 and returns the address. Each
// connection is handshaken and closed.
func serveTLS(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	return serveTCP(t, func(conn net.Conn) {
		tc := tls.Server(conn, cfg)
		defer tc.Close()
		_ = tc.SetDeadline(time.Now().Add(testTimeout))
		_ = tc.Handshake()
	})
}

// fakePostgres imitates the start of a PostgreSQL connection: it reads the
// SSLRequest, answers with answer and, on 'S', serves cert over tls. Each
// well-formed SSLRequest it gets is counted on requests.
type fakePostgres struct {
	addr     string
	requests chan struct{}
}

func startFakePostgres(t *testing.T, answer byte, cert tls.Certificate) *fakePostgres {
	t.Helper()
	f := &fakePostgres{requests: make(chan struct{}, 16)}
	want := make([]byte, 8)
	binary.BigEndian.PutUint32(want[0:4], 8)
	binary.BigEndian.PutUint32(want[4:8], 80877103)
	f.addr = serveTCP(t, func(conn net.Conn) {
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(testTimeout))
		got := make([]byte, 8)
		if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, want) {
			return // a real server would drop a bad startup packet
		}
		f.requests <- struct{}{}
		if _, err := conn.Write([]byte{answer}); err != nil || answer != 'S' {
			return
		}
		_ = tls.Server(conn, &tls.Config{Certificates: []tls.Certificate{cert}}).Handshake()
	})
	return f
}

// silentServer accepts connections and never says a word.
func silentServer(t *testing.T) string {
	t.Helper()
	done := make(chan struct{})
	addr := serveTCP(t, func(conn net.Conn) {
		defer conn.Close()
		select {
		case <-done:
		case <-time.After(testTimeout):
		}
	})
	t.Cleanup(func() { close(done) })
	return addr
}

func TestTLSCertificateRun(t *testing.T) {
	t.Parallel()
	now := time.Now()
	ca := issueCert(t, certOpts{cn: "test root ca", isCA: true}, nil)
	otherCA := issueCert(t, certOpts{cn: "other ca", isCA: true}, nil)
	caFile := writePEM(t, ca)
	otherCAFile := writePEM(t, otherCA)

	good := issueCert(t, certOpts{cn: "db1", dns: []string{"db1.test"}, ips: []string{"127.0.0.1"}}, ca)
	goodAddr := serveTLS(t, good.tlsCert(ca))
	goodUntil := good.cert.NotAfter.UTC().Format("2006-01-02")

	expiring := issueCert(t, certOpts{cn: "db2", ips: []string{"127.0.0.1"}, notAfter: now.Add(5*24*time.Hour + time.Hour)}, ca)
	expiringAddr := serveTLS(t, expiring.tlsCert())
	expiringOn := expiring.cert.NotAfter.UTC().Format("2006-01-02")

	expired := issueCert(t, certOpts{cn: "db3", ips: []string{"127.0.0.1"},
		notBefore: now.AddDate(0, 0, -30), notAfter: now.Add(-2*24*time.Hour - time.Hour)}, ca)
	expiredAddr := serveTLS(t, expired.tlsCert())

	notYet := issueCert(t, certOpts{cn: "db4", ips: []string{"127.0.0.1"}, notBefore: now.Add(48 * time.Hour)}, ca)
	notYetAddr := serveTLS(t, notYet.tlsCert())

	cnOnly := issueCert(t, certOpts{cn: "127.0.0.1"}, ca)
	cnOnlyAddr := serveTLS(t, cnOnly.tlsCert())

	self := issueCert(t, certOpts{cn: "selfie", dns: []string{"selfie.test"}}, nil)
	selfAddr := serveTLS(t, self.tlsCert())
	selfFile := writePEM(t, self)

	// All wrong at once: expired, misnamed, from an unknown authority.
	allWrong := issueCert(t, certOpts{cn: "wrong", dns: []string{"wrong.test"},
		notBefore: now.AddDate(0, 0, -30), notAfter: now.AddDate(0, 0, -1)}, otherCA)
	allWrongAddr := serveTLS(t, allWrong.tlsCert())

	pgYes := startFakePostgres(t, 'S', good.tlsCert())
	pgNo := startFakePostgres(t, 'N', good.tlsCert())
	pgOdd := startFakePostgres(t, 'E', good.tlsCert())
	silent := silentServer(t)
	closed := closedPort(t)

	tests := []struct {
		name    string
		raw     map[string]any
		timeout time.Duration
		status  Status
		want    []string
		avoid   []string
		pg      *fakePostgres // when set, it must have seen an SSLRequest
	}{
		{name: "valid with ca_file", raw: map[string]any{"address": goodAddr, "ca_file": caFile},
			status: Pass, want: []string{"CN=db1", "SANs: db1.test, 127.0.0.1", "valid until " + goodUntil, "trusted by " + caFile, `valid for "127.0.0.1"`}},
		{name: "valid for a dns name", raw: map[string]any{"address": goodAddr, "ca_file": caFile, "name": "db1.test"},
			status: Pass, want: []string{`valid for "db1.test"`}},
		{name: "name mismatch", raw: map[string]any{"address": goodAddr, "ca_file": caFile, "name": "db9.test"},
			status: Fail, want: []string{`not valid for "db9.test": it names db1.test, 127.0.0.1`},
			avoid: []string{"not trusted", "expire"}},
		{name: "cn without sans does not match", raw: map[string]any{"address": cnOnlyAddr, "ca_file": caFile},
			status: Fail, want: []string{"only CN=127.0.0.1 and no SANs"}},
		{name: "expiring within min_days", raw: map[string]any{"address": expiringAddr, "ca_file": caFile},
			status: Fail, want: []string{"expires on " + expiringOn, "in 5 days (want at least 14 days)", "not expiring within 14 days"},
			avoid: []string{"not trusted", "not valid for"}},
		{name: "expiring after a smaller min_days", raw: map[string]any{"address": expiringAddr, "ca_file": caFile, "min_days": "3"},
			status: Pass, want: []string{"(5 days left)"}},
		{name: "expired", raw: map[string]any{"address": expiredAddr, "ca_file": caFile, "min_days": "0"},
			status: Fail, want: []string{"expired on ", "2 days ago"}, avoid: []string{"not trusted", "not valid for"}},
		{name: "not yet valid", raw: map[string]any{"address": notYetAddr, "ca_file": caFile},
			status: Fail, want: []string{"not valid before "}, avoid: []string{"not trusted"}},
		{name: "untrusted without ca_file", raw: map[string]any{"address": goodAddr},
			status: Fail, want: []string{"not trusted by the system roots", "a certificate trusted by the system roots"},
			avoid: []string{"not valid for", "expire"}},
		{name: "untrusted by another ca", raw: map[string]any{"address": goodAddr, "ca_file": otherCAFile},
			status: Fail, want: []string{"not trusted by " + otherCAFile + `: issuer "test root ca" is unknown`}},
		{name: "self-signed trusted by itself", raw: map[string]any{"address": selfAddr, "ca_file": selfFile, "name": "selfie.test"},
			status: Pass, want: []string{"CN=selfie"}},
		{name: "self-signed untrusted", raw: map[string]any{"address": selfAddr, "ca_file": caFile, "name": "selfie.test"},
			status: Fail, want: []string{"it is self-signed"}},
		{name: "every problem reported", raw: map[string]any{"address": allWrongAddr, "ca_file": caFile},
			status: Fail, want: []string{"expired on ", `not valid for "127.0.0.1": it names wrong.test`, `issuer "other ca" is unknown`}},
		{name: "postgres answering S", raw: map[string]any{"address": pgYes.addr, "ca_file": caFile, "protocol": "postgres"},
			status: Pass, want: []string{"CN=db1"}, pg: pgYes},
		{name: "postgres answering S with a wrong name", raw: map[string]any{"address": pgYes.addr, "ca_file": caFile, "protocol": "postgres", "name": "db9.test"},
			status: Fail, want: []string{`not valid for "db9.test"`}, pg: pgYes},
		{name: "postgres answering N", raw: map[string]any{"address": pgNo.addr, "ca_file": caFile, "protocol": "postgres"},
			status: Fail, want: []string{"postgres " + pgNo.addr + " refuses tls: it answered N to the SSLRequest"}, pg: pgNo},
		{name: "postgres answering neither", raw: map[string]any{"address": pgOdd.addr, "ca_file": caFile, "protocol": "postgres"},
			status: Fail, want: []string{`answered 'E' to the SSLRequest, not S or N`}, pg: pgOdd},
		{name: "postgres protocol to a silent server", raw: map[string]any{"address": silent, "protocol": "postgres"}, timeout: 300 * time.Millisecond,
			status: Fail, want: []string{"no answer to the SSLRequest: no answer before the time limit"}},
		{name: "tls to a silent server", raw: map[string]any{"address": silent}, timeout: 300 * time.Millisecond,
			status: Fail, want: []string{"tls handshake with " + silent + ": no handshake before the time limit"}},
		{name: "tls to a postgres server without SSLRequest", raw: map[string]any{"address": pgYes.addr}, timeout: 300 * time.Millisecond,
			status: Fail, want: []string{"tls handshake with " + pgYes.addr}},
		{name: "closed port", raw: map[string]any{"address": closed},
			status: Fail, want: []string{"connection refused"}},
		{name: "missing ca_file is an error", raw: map[string]any{"address": goodAddr, "ca_file": filepath.Join(t.TempDir(), "nope.pem")},
			status: Error, want: []string{"ca_file", "no such file"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := mustBuild(t, "tls.certificate", tc.raw)
			r := runTimed(t, c, nil, tc.timeout)
			assertResult(t, r, tc.status, tc.want, tc.avoid)
			if tc.pg != nil {
				select {
				case <-tc.pg.requests:
				default:
					t.Error("the fake postgres server saw no well-formed SSLRequest")
				}
			}
		})
	}
}

func TestTLSCertificateEveryProblemOnItsOwnLine(t *testing.T) {
	t.Parallel()
	ca := issueCert(t, certOpts{cn: "ca", isCA: true}, nil)
	other := issueCert(t, certOpts{cn: "other", isCA: true}, nil)
	leaf := issueCert(t, certOpts{cn: "x", dns: []string{"x.test"}, notAfter: time.Now().Add(24 * time.Hour)}, other)
	addr := serveTLS(t, leaf.tlsCert())
	c := mustBuild(t, "tls.certificate", map[string]any{"address": addr, "ca_file": writePEM(t, ca)})
	r := c.Run(testCtx(t, 0), nil)
	assertResult(t, r, Fail, nil, nil)
	lines := strings.Split(r.Detail, "\n")
	if len(lines) != 3 {
		t.Fatalf("detail has %d lines, want 3 (expiry, name, chain): %q", len(lines), r.Detail)
	}
	for i, want := range []string{"expires on", "not valid for", "not trusted"} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("detail line %d = %q, want it to say %q", i+1, lines[i], want)
		}
	}
	if days, _ := r.Values["days_left"].(int); days != 0 {
		t.Errorf("days_left = %v, want 0", r.Values["days_left"])
	}
}

func TestTLSCertificateCAFileWithoutPEM(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := mustBuild(t, "tls.certificate", map[string]any{"address": closedPort(t), "ca_file": path})
	assertResult(t, c.Run(testCtx(t, 0), nil), Error, []string{"holds no PEM certificate"}, nil)
}

func TestTLSCertificateNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		raw      map[string]any
		wantErr  string
		want     TLSCertificate
		describe string
	}{
		{name: "defaults", raw: map[string]any{"address": "db1.example.com:5432"},
			want:     TLSCertificate{Address: "db1.example.com:5432", Name: "db1.example.com", MinDays: 14, Protocol: "tls"},
			describe: `tls certificate of db1.example.com:5432 is trusted for "db1.example.com" and valid 14+ days`},
		{name: "ipv6 host is the name", raw: map[string]any{"address": "[::1]:5432", "protocol": "postgres", "min_days": "30"},
			want:     TLSCertificate{Address: "[::1]:5432", Name: "::1", MinDays: 30, Protocol: "postgres"},
			describe: `tls certificate of [::1]:5432 (postgres) is trusted for "::1" and valid 30+ days`},
		{name: "name given", raw: map[string]any{"address": "10.0.0.5:443", "name": "db.example.com", "ca_file": "/etc/ca.pem"},
			want: TLSCertificate{Address: "10.0.0.5:443", Name: "db.example.com", CAFile: "/etc/ca.pem", MinDays: 14, Protocol: "tls"}},
		{name: "no port", raw: map[string]any{"address": "db1"}, wantErr: "host:port"},
		{name: "negative min_days", raw: map[string]any{"address": "db1:5432", "min_days": "-1"}, wantErr: "min_days"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := buildExpecting(t, "tls.certificate", tc.raw, tc.wantErr)
			if c == nil {
				return
			}
			if got := *c.(*TLSCertificate); got != tc.want {
				t.Errorf("new = %+v, want %+v", got, tc.want)
			}
			if tc.describe != "" {
				if got := c.Describe(nil); got != tc.describe {
					t.Errorf("describe = %q, want %q", got, tc.describe)
				}
			}
		})
	}
	// The enum is enforced by the schema; New itself rejects an unknown
	// protocol too, for callers that build values by hand.
	def, _ := Lookup("tls.certificate")
	if _, err := def.New(params.NewValues(map[string]any{"address": "db1:5432", "protocol": "ftp"})); err == nil {
		t.Error("new accepted protocol ftp")
	}
}
