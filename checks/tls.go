package checks

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
)

func init() {
	Register(Definition{
		Kind: "tls.certificate",
		Doc:  "a server's tls certificate is trusted, matches its name and does not expire soon",
		Params: []params.Spec{
			{Name: "address", Type: params.String, Required: true,
				Doc: "host:port of the server, e.g. db1.example.com:5432"},
			{Name: "name", Type: params.String,
				Doc: "name the certificate must be valid for; empty means the host part of address"},
			{Name: "ca_file", Type: params.String,
				Doc: "PEM file of the certificate authorities to trust instead of the system's"},
			{Name: "min_days", Type: params.Int, Default: "14",
				Doc: "days the certificate must stay valid for, counted from now"},
			{Name: "protocol", Type: params.String, Default: "tls", Enum: []string{"tls", "postgres"},
				Doc: "tls to start the handshake at once; postgres to ask for it with an SSLRequest first"},
		},
		New: newTLSCertificate,
	})
}

// The protocols TLSCertificate speaks before the handshake.
const (
	protocolTLS      = "tls"      // the handshake starts at once
	protocolPostgres = "postgres" // an SSLRequest comes first
)

// certDate is how dates of certificates are shown.
const certDate = "2006-01-02 15:04 MST"

// sslRequestCode is the code of PostgreSQL's SSLRequest message.
const sslRequestCode = 80877103

// TLSCertificate passes when the certificate a server presents chains to a
// trusted authority, is valid for Name and stays valid for MinDays more
// days. A standby promoted with a certificate clients reject, or one about
// to expire, is an outage the switchover would start.
type TLSCertificate struct {
	Address  string // host:port
	Name     string // name the certificate must be valid for
	CAFile   string // PEM roots; "" is the system's
	MinDays  int
	Protocol string // protocolTLS or protocolPostgres
}

var _ Check = (*TLSCertificate)(nil)

func newTLSCertificate(v params.Values) (Check, error) {
	c := &TLSCertificate{
		Address:  strings.TrimSpace(v.String("address")),
		Name:     strings.TrimSpace(v.String("name")),
		CAFile:   v.String("ca_file"),
		MinDays:  14,
		Protocol: protocolTLS,
	}
	if err := checkHostPort(c.Address); err != nil {
		return nil, err
	}
	if c.Name == "" {
		c.Name, _, _ = net.SplitHostPort(c.Address)
	}
	if v.Has("min_days") {
		d := v.Int("min_days")
		if d < 0 || d > 100*366 {
			return nil, fmt.Errorf("min_days %d is out of range (want 0 or more days)", d)
		}
		c.MinDays = int(d)
	}
	switch p := v.String("protocol"); p {
	case "", protocolTLS:
	case protocolPostgres:
		c.Protocol = p
	default:
		return nil, fmt.Errorf("protocol %q: want %s or %s", p, protocolTLS, protocolPostgres)
	}
	return c, nil
}

// Describe implements Check.
func (c *TLSCertificate) Describe(*cluster.Target) string {
	proto := ""
	if c.Protocol == protocolPostgres {
		proto = " (postgres)"
	}
	return fmt.Sprintf("tls certificate of %s%s is trusted for %q and valid %d+ days", c.Address, proto, c.Name, c.MinDays)
}

// Run implements Check.
func (c *TLSCertificate) Run(ctx context.Context, _ *cluster.Target) Result {
	if err := checkHostPort(c.Address); err != nil {
		return Errored(err)
	}
	roots, trustedBy, err := c.roots()
	if err != nil {
		return Errored(err)
	}
	wanted := fmt.Sprintf("a certificate trusted by %s, valid for %q, not expiring within %s",
		trustedBy, c.Name, plural(c.MinDays, "day"))
	if c.MinDays == 0 {
		wanted = fmt.Sprintf("a certificate trusted by %s, valid for %q, not expired", trustedBy, c.Name)
	}

	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.Address)
	if err != nil {
		return Failed(fmt.Sprintf("tcp %s: %s", c.Address, dialProblem(err)), wanted)
	}
	defer conn.Close()
	// Plain reads and writes do not see ctx: a deadline in the past wakes
	// them when it is done.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if c.Protocol == protocolPostgres {
		if r, ok := c.requestSSL(ctx, conn, wanted); !ok {
			return r
		}
	}

	tc := tls.Client(conn, &tls.Config{
		ServerName: c.Name,
		// Verification is done below, by hand, so that an expired, misnamed
		// and untrusted certificate each get their own message.
		InsecureSkipVerify: true,
	})
	if err := tc.HandshakeContext(ctx); err != nil {
		return Failed(fmt.Sprintf("tls handshake with %s: %s", c.Address, handshakeProblem(ctx, err)), wanted)
	}
	state := tc.ConnectionState()
	if len(state.PeerCertificates) == 0 {
		return Failed(fmt.Sprintf("%s presented no certificate", c.Address), wanted)
	}
	return c.judge(state, roots, trustedBy, wanted, time.Now())
}

// roots returns the pool to verify against (nil for the system's) and how
// to name it in messages.
func (c *TLSCertificate) roots() (*x509.CertPool, string, error) {
	if c.CAFile == "" {
		return nil, "the system roots", nil
	}
	pem, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, "", fmt.Errorf("ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, "", fmt.Errorf("ca_file %s holds no PEM certificate", c.CAFile)
	}
	return pool, c.CAFile, nil
}

// requestSSL sends PostgreSQL's SSLRequest and reads the one-byte answer.
// It returns ok when the server agreed to a TLS handshake, and otherwise the
// result to report.
func (c *TLSCertificate) requestSSL(ctx context.Context, conn net.Conn, wanted string) (Result, bool) {
	var msg [8]byte
	binary.BigEndian.PutUint32(msg[0:4], 8)
	binary.BigEndian.PutUint32(msg[4:8], sslRequestCode)
	if _, err := conn.Write(msg[:]); err != nil {
		return Failed(fmt.Sprintf("postgres %s: sending the SSLRequest: %s", c.Address, ioProblem(ctx, err)), wanted), false
	}
	var answer [1]byte
	if _, err := io.ReadFull(conn, answer[:]); err != nil {
		return Failed(fmt.Sprintf("postgres %s: no answer to the SSLRequest: %s", c.Address, ioProblem(ctx, err)), wanted), false
	}
	switch answer[0] {
	case 'S':
		return Result{}, true
	case 'N':
		return Failed(fmt.Sprintf("postgres %s refuses tls: it answered N to the SSLRequest (ssl = off?)", c.Address), wanted), false
	}
	return Failed(fmt.Sprintf("postgres %s answered %q to the SSLRequest, not S or N: is it a postgres server?", c.Address, answer[0]), wanted), false
}

// judge checks the certificate the server presented, now, and reports every
// problem found.
func (c *TLSCertificate) judge(state tls.ConnectionState, roots *x509.CertPool, trustedBy, wanted string, now time.Time) Result {
	leaf := state.PeerCertificates[0]
	var problems []string

	notAfter := leaf.NotAfter.UTC().Format(certDate)
	daysLeft := int(leaf.NotAfter.Sub(now) / (24 * time.Hour))
	switch {
	case now.Before(leaf.NotBefore):
		problems = append(problems, fmt.Sprintf("not valid before %s", leaf.NotBefore.UTC().Format(certDate)))
	case now.After(leaf.NotAfter):
		problems = append(problems, fmt.Sprintf("expired on %s, %s ago", notAfter, days(now.Sub(leaf.NotAfter))))
	case leaf.NotAfter.Before(now.AddDate(0, 0, c.MinDays)):
		problems = append(problems, fmt.Sprintf("expires on %s, in %s (want at least %s)", notAfter, days(leaf.NotAfter.Sub(now)), plural(c.MinDays, "day")))
	}

	if err := leaf.VerifyHostname(c.Name); err != nil {
		problems = append(problems, fmt.Sprintf("not valid for %q: it names %s", c.Name, certNames(leaf)))
	}

	if err := verifyChain(leaf, state.PeerCertificates[1:], roots, now); err != nil {
		problems = append(problems, chainProblem(err, leaf, trustedBy))
	}

	summary := certSummary(leaf, now)
	r := Result{
		Values: map[string]any{
			"subject":   leaf.Subject.CommonName,
			"sans":      sans(leaf),
			"issuer":    leaf.Issuer.CommonName,
			"not_after": leaf.NotAfter.UTC().Format(time.RFC3339),
			"days_left": daysLeft,
		},
	}
	if len(problems) == 0 {
		r.Status = Pass
		r.Observed = fmt.Sprintf("%s presented %s, trusted by %s and valid for %q", c.Address, summary, trustedBy, c.Name)
		return r
	}
	r.Status = Fail
	r.Observed = fmt.Sprintf("%s presented %s: %s", c.Address, summary, strings.Join(problems, "; "))
	r.Wanted = wanted
	r.Detail = strings.Join(problems, "\n")
	return r
}

// verifyChain checks that leaf chains, through intermediates, to roots (nil
// for the system's). The name is not checked here (no DNSName) and a leaf
// out of its validity period, reported on its own, is checked at a time
// within it, so that neither hides an untrusted chain.
func verifyChain(leaf *x509.Certificate, intermediates []*x509.Certificate, roots *x509.CertPool, now time.Time) error {
	inter := x509.NewCertPool()
	for _, ic := range intermediates {
		inter.AddCert(ic)
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now}
	_, err := leaf.Verify(opts)
	var invalid x509.CertificateInvalidError
	if !errors.As(err, &invalid) || invalid.Reason != x509.Expired || invalid.Cert == nil || !invalid.Cert.Equal(leaf) {
		return err
	}
	opts.CurrentTime = now
	if opts.CurrentTime.Before(leaf.NotBefore) {
		opts.CurrentTime = leaf.NotBefore
	}
	if opts.CurrentTime.After(leaf.NotAfter) {
		opts.CurrentTime = leaf.NotAfter
	}
	_, err = leaf.Verify(opts)
	if errors.As(err, &invalid) && invalid.Reason == x509.Expired {
		// Another certificate of the chain was not valid at that time:
		// nothing to say beyond the leaf's dates, already reported.
		return nil
	}
	return err
}

// chainProblem says why the chain of leaf did not verify.
func chainProblem(err error, leaf *x509.Certificate, trustedBy string) string {
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	issuer := leaf.Issuer.CommonName
	if issuer == "" {
		issuer = leaf.Issuer.String()
	}
	switch {
	case errors.As(err, &unknown):
		if leaf.Issuer.String() == leaf.Subject.String() {
			return fmt.Sprintf("not trusted by %s: it is self-signed (issuer %q)", trustedBy, issuer)
		}
		return fmt.Sprintf("not trusted by %s: issuer %q is unknown", trustedBy, issuer)
	case errors.As(err, &invalid):
		return fmt.Sprintf("chain not trusted by %s: %s", trustedBy, strings.TrimPrefix(invalid.Error(), "x509: "))
	}
	return fmt.Sprintf("chain not trusted by %s: %s", trustedBy, strings.TrimPrefix(err.Error(), "x509: "))
}

// certSummary names a certificate and its end of validity for messages.
func certSummary(leaf *x509.Certificate, now time.Time) string {
	s := "a certificate"
	if cn := leaf.Subject.CommonName; cn != "" {
		s += fmt.Sprintf(" for CN=%s", cn)
	}
	if names := sans(leaf); len(names) > 0 {
		s += " (SANs: " + strings.Join(names, ", ") + ")"
	}
	end := leaf.NotAfter.UTC().Format(certDate)
	if now.After(leaf.NotAfter) {
		return s + " valid until " + end
	}
	return fmt.Sprintf("%s valid until %s (%s left)", s, end, days(leaf.NotAfter.Sub(now)))
}

// sans lists the subject alternative names of a certificate.
func sans(leaf *x509.Certificate) []string {
	out := append([]string(nil), leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		out = append(out, ip.String())
	}
	for _, u := range leaf.URIs {
		out = append(out, u.String())
	}
	return out
}

// certNames lists the names a certificate is valid for, for a mismatch.
func certNames(leaf *x509.Certificate) string {
	names := sans(leaf)
	if len(names) == 0 {
		if leaf.Subject.CommonName != "" {
			return fmt.Sprintf("only CN=%s and no SANs (a CN alone is not honoured)", leaf.Subject.CommonName)
		}
		return "no names at all"
	}
	return strings.Join(names, ", ")
}

// handshakeProblem says why a tls handshake failed.
func handshakeProblem(ctx context.Context, err error) string {
	if ctx.Err() != nil {
		return "no handshake before the time limit"
	}
	if errors.Is(err, io.EOF) {
		return "the server closed the connection"
	}
	return err.Error()
}

// ioProblem says why a plain read or write failed.
func ioProblem(ctx context.Context, err error) string {
	if ctx.Err() != nil {
		return "no answer before the time limit"
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "the server closed the connection"
	}
	return dialProblem(err)
}

// days writes d in whole days, rounded down, e.g. "3 days".
func days(d time.Duration) string {
	n := int(d / (24 * time.Hour))
	if n == 0 {
		return "less than a day"
	}
	return plural(n, "day")
}

// plural writes n with its unit, e.g. "1 day", "3 days".
func plural(n int, unit string) string {
	if n == 1 || n == -1 {
		return fmt.Sprintf("%d %s", n, unit)
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
