package checks

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 5 * time.Second

// testCtx returns a context cancelled after d, or after testTimeout when d is 0.
func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	if d == 0 {
		d = testTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// build decodes raw parameters against kind's schema, the way the runbook
// loader does (defaults included), and builds the check.
func build(t *testing.T, kind string, raw map[string]any) (Check, error) {
	t.Helper()
	def, ok := Lookup(kind)
	if !ok {
		t.Fatalf("kind %q is not registered", kind)
	}
	rm := map[string]params.Raw{}
	for k, v := range raw {
		switch x := v.(type) {
		case string:
			rm[k] = params.Raw{Scalar: x}
		case []string:
			rm[k] = params.Raw{List: x, IsList: true}
		default:
			t.Fatalf("parameter %q: unsupported test value %T", k, v)
		}
	}
	vals, probs := params.Decode(def.Params, rm)
	if len(probs) > 0 {
		t.Fatalf("decode %s %v: %v", kind, raw, probs)
	}
	return def.New(vals)
}

// mustBuild is build that fails the test on an error.
func mustBuild(t *testing.T, kind string, raw map[string]any) Check {
	t.Helper()
	c, err := build(t, kind, raw)
	if err != nil {
		t.Fatalf("new %s %v: %v", kind, raw, err)
	}
	return c
}

// assertResult checks a result's status and that its text holds every one of
// want and none of avoid.
func assertResult(t *testing.T, r Result, status Status, want, avoid []string) {
	t.Helper()
	text := r.Observed + "\n" + r.Wanted + "\n" + r.Detail
	t.Logf("%s: %s (wanted: %s)", r.Status, r.Observed, r.Wanted)
	if r.Status != status {
		t.Fatalf("status = %s, want %s; observed %q, wanted %q, detail %q", r.Status, status, r.Observed, r.Wanted, r.Detail)
	}
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("result lacks %q:\nobserved: %s\nwanted: %s\ndetail: %s", w, r.Observed, r.Wanted, r.Detail)
		}
	}
	for _, a := range avoid {
		if strings.Contains(text, a) {
			t.Errorf("result holds %q but should not:\nobserved: %s\nwanted: %s\ndetail: %s", a, r.Observed, r.Wanted, r.Detail)
		}
	}
	if r.Status == Fail && r.Wanted == "" {
		t.Errorf("a failing result must say what was wanted; observed %q", r.Observed)
	}
	if r.Observed == "" {
		t.Errorf("result says nothing of what was observed")
	}
}

// buildExpecting builds a check for a table test of New. With wantErr
// set, New must fail with an error that says it, and buildExpecting returns
// nil; without, New must succeed.
func buildExpecting(t *testing.T, kind string, raw map[string]any, wantErr string) Check {
	t.Helper()
	c, err := build(t, kind, raw)
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("new error = %v, want one about %q", err, wantErr)
		}
		return nil
	}
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	if c == nil {
		t.Fatal("new returned no check")
	}
	return c
}

// runTimed runs a check with a context that ends after timeout (testTimeout
// when 0), and fails the test when the check overstays it.
func runTimed(t *testing.T, c Check, tg *cluster.Target, timeout time.Duration) Result {
	t.Helper()
	start := time.Now()
	r := c.Run(testCtx(t, timeout), tg)
	if took := time.Since(start); timeout > 0 && took > timeout+2*time.Second {
		t.Errorf("run took %s, past its %s ctx", took, timeout)
	}
	return r
}

// serveTCP listens on 127.0.0.1 until the test ends, handing each
// connection to handle in a goroutine of its own, and returns the address.
func serveTCP(t *testing.T, handle func(conn net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go handle(conn)
		}
	}()
	return l.Addr().String()
}

// closedPort returns a 127.0.0.1 address on which nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	// A port freed by closing a listener is in the kernel's ephemeral
	// range, where another process's socket can take it before the test
	// dials it. Privileged ports nobody listens on stay closed.
	for _, p := range []int{1, 7, 9, 13, 19, 37} {
		addr := fmt.Sprintf("127.0.0.1:%d", p)
		c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
		if err != nil && strings.Contains(err.Error(), "refused") {
			return addr
		}
		if c != nil {
			c.Close()
		}
	}
	t.Fatal("no closed privileged port on 127.0.0.1 to test against")
	return ""
}

// testCert is a certificate with its key, as tests issue them.
type testCert struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
}

// certOpts shapes a test certificate.
type certOpts struct {
	cn        string
	dns       []string
	ips       []string
	notBefore time.Time // zero: an hour ago
	notAfter  time.Time // zero: a year from now
	isCA      bool
}

// issueCert makes a certificate signed by parent, or self-signed when parent
// is nil.
func issueCert(t *testing.T, o certOpts, parent *testCert) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	if o.notBefore.IsZero() {
		o.notBefore = time.Now().Add(-time.Hour)
	}
	if o.notAfter.IsZero() {
		o.notAfter = time.Now().AddDate(1, 0, 0)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: o.cn},
		NotBefore:    o.notBefore,
		NotAfter:     o.notAfter,
		DNSNames:     o.dns,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, ip := range o.ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	if o.isCA {
		tmpl.IsCA = true
		tmpl.BasicConstraintsValid = true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCert{cert: cert, key: key, der: der}
}

// tlsCert is what a server presents: c and the chain above it, if any.
func (c *testCert) tlsCert(chain ...*testCert) tls.Certificate {
	out := tls.Certificate{Certificate: [][]byte{c.der}, PrivateKey: c.key, Leaf: c.cert}
	for _, ic := range chain {
		out.Certificate = append(out.Certificate, ic.der)
	}
	return out
}

// writePEM writes certs to a PEM file in a fresh temporary directory.
func writePEM(t *testing.T, certs ...*testCert) string {
	t.Helper()
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.der})...)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
