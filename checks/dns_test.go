package checks

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeDNS is a tiny authoritative dns server on 127.0.0.1 over udp. It
// answers A and AAAA questions for the names in records and NXDOMAIN for the
// rest.
type fakeDNS struct {
	conn    net.PacketConn
	records map[string][]netip.Addr // fully qualified, lower case
	queries atomic.Int32
}

func startFakeDNS(t *testing.T, records map[string][]netip.Addr) *fakeDNS {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeDNS{conn: conn, records: records}
	t.Cleanup(func() { _ = conn.Close() })
	go f.serve()
	return f
}

func (f *fakeDNS) addr() string { return f.conn.LocalAddr().String() }

func (f *fakeDNS) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := f.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp := f.answer(buf[:n]); resp != nil {
			f.queries.Add(1)
			_, _ = f.conn.WriteTo(resp, from)
		}
	}
}

// answer builds the response to one query, or nil for garbage.
func (f *fakeDNS) answer(q []byte) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil
	}
	// The question: labels up to a zero byte, then type and class.
	var labels []string
	i := 12
	for i < len(q) && q[i] != 0 {
		l := int(q[i])
		if l&0xC0 != 0 || i+1+l > len(q) {
			return nil
		}
		labels = append(labels, string(q[i+1:i+1+l]))
		i += 1 + l
	}
	if i+5 > len(q) {
		return nil
	}
	question := q[12 : i+5]
	qtype := binary.BigEndian.Uint16(q[i+1 : i+3])
	name := strings.ToLower(strings.Join(labels, ".")) + "."

	addrs, known := f.records[name]
	var answers [][]byte
	for _, a := range addrs {
		rtype := uint16(1) // A
		if a.Is6() {
			rtype = 28 // AAAA
		}
		if rtype != qtype {
			continue
		}
		raw := a.AsSlice()
		rr := []byte{0xC0, 12} // pointer to the question's name
		rr = binary.BigEndian.AppendUint16(rr, rtype)
		rr = binary.BigEndian.AppendUint16(rr, 1) // IN
		rr = binary.BigEndian.AppendUint32(rr, 60)
		rr = binary.BigEndian.AppendUint16(rr, uint16(len(raw)))
		answers = append(answers, append(rr, raw...))
	}
	flags := uint16(0x8000 | 0x0400 | 0x0100 | 0x0080) // response, authoritative, rd, ra
	if !known {
		flags |= 3 // NXDOMAIN
	}
	resp := append([]byte(nil), q[0:2]...)
	resp = binary.BigEndian.AppendUint16(resp, flags)
	resp = binary.BigEndian.AppendUint16(resp, 1)
	resp = binary.BigEndian.AppendUint16(resp, uint16(len(answers)))
	resp = binary.BigEndian.AppendUint16(resp, 0)
	resp = binary.BigEndian.AppendUint16(resp, 0)
	resp = append(resp, question...)
	for _, a := range answers {
		resp = append(resp, a...)
	}
	return resp
}

// closedUDPPort returns a 127.0.0.1 udp address on which nothing listens.
func closedUDPPort(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestDNSResolvesRun(t *testing.T) {
	t.Parallel()
	fake := startFakeDNS(t, map[string][]netip.Addr{
		"db.example.test.": {netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("fd00::5")},
	})
	// A server that reads and never answers.
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = silent.Close() })
	closedUDP := closedUDPPort(t)

	tests := []struct {
		name    string
		raw     map[string]any
		timeout time.Duration
		status  Status
		want    []string
	}{
		{name: "localhost resolves", raw: map[string]any{"name": "localhost"},
			status: Pass, want: []string{"localhost resolves to ", "127.0.0.1"}},
		{name: "localhost resolves to the expected address", raw: map[string]any{"name": "localhost", "expect": []string{"127.0.0.1"}},
			status: Pass, want: []string{"127.0.0.1"}},
		{name: "missing expected address fails", raw: map[string]any{"name": "localhost", "expect": []string{"127.0.0.1", "10.9.9.9"}},
			status: Fail, want: []string{"localhost resolves to 127.0.0.1", "missing 10.9.9.9", "to resolve to 127.0.0.1, 10.9.9.9"}},
		{name: "server answers", raw: map[string]any{"name": "db.example.test", "server": fake.addr()},
			status: Pass, want: []string{"db.example.test resolves to 10.0.0.5, fd00::5"}},
		{name: "server answers the expected addresses", raw: map[string]any{"name": "DB.example.test", "server": fake.addr(), "expect": []string{"fd00::5", "10.0.0.5"}},
			status: Pass, want: []string{"10.0.0.5, fd00::5"}},
		{name: "server answers other addresses", raw: map[string]any{"name": "db.example.test", "server": fake.addr(), "expect": []string{"10.0.0.6"}},
			status: Fail, want: []string{"resolves to 10.0.0.5, fd00::5, missing 10.0.0.6"}},
		{name: "server knows no such name", raw: map[string]any{"name": "gone.example.test", "server": fake.addr()},
			status: Fail, want: []string{"gone.example.test does not resolve: " + fake.addr() + " says no such host"}},
		{name: "closed server port is an error", raw: map[string]any{"name": "db.example.test", "server": closedUDP}, timeout: time.Second,
			status: Error, want: []string{"resolve db.example.test with " + closedUDP}},
		{name: "silent server is an error", raw: map[string]any{"name": "db.example.test", "server": silent.LocalAddr().String()}, timeout: 300 * time.Millisecond,
			status: Error, want: []string{"resolve db.example.test with " + silent.LocalAddr().String()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := mustBuild(t, "dns.resolves", tc.raw)
			r := runTimed(t, c, nil, tc.timeout)
			assertResult(t, r, tc.status, tc.want, nil)
			if tc.status == Pass {
				if got, _ := r.Values["addresses"].([]string); len(got) == 0 {
					t.Errorf("a pass records no addresses: %v", r.Values)
				}
			}
		})
	}
	t.Cleanup(func() {
		if fake.queries.Load() == 0 {
			t.Error("the fake dns server was never asked")
		}
	})
}

// TestDNSResolvesInvalid asks the system resolver for a name under .invalid,
// which RFC 6761 says never exists.
func TestDNSResolvesInvalid(t *testing.T) {
	t.Parallel()
	c := mustBuild(t, "dns.resolves", map[string]any{"name": "switchover-test.invalid"})
	r := c.Run(testCtx(t, 3*time.Second), nil)
	if r.Status == Error && !strings.Contains(r.Observed, "no such host") {
		t.Skipf("the system resolver cannot be reached here: %s", r.Observed)
	}
	assertResult(t, r, Fail, []string{"switchover-test.invalid does not resolve: the system resolver says no such host"}, nil)
}

func TestDNSResolvesNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		raw        map[string]any
		wantErr    string
		wantServer string
	}{
		{name: "empty name", raw: map[string]any{"name": " "}, wantErr: "name is empty"},
		{name: "expect not an address", raw: map[string]any{"name": "db", "expect": []string{"db2.example.com"}}, wantErr: "not an ip address"},
		{name: "server malformed", raw: map[string]any{"name": "db", "server": "[::1"}, wantErr: "server"},
		{name: "server without port gets 53", raw: map[string]any{"name": "db", "server": "127.0.0.53"}, wantServer: "127.0.0.53:53"},
		{name: "ipv6 server without port gets 53", raw: map[string]any{"name": "db", "server": "::1"}, wantServer: "[::1]:53"},
		{name: "host name server without port gets 53", raw: map[string]any{"name": "db", "server": "ns1.example.com"}, wantServer: "ns1.example.com:53"},
		{name: "server with port kept", raw: map[string]any{"name": "db", "server": "127.0.0.1:5353"}, wantServer: "127.0.0.1:5353"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := buildExpecting(t, "dns.resolves", tc.raw, tc.wantErr)
			if c == nil {
				return
			}
			if got := c.(*DNSResolves).Server; got != tc.wantServer {
				t.Errorf("server = %q, want %q", got, tc.wantServer)
			}
		})
	}
}

func TestDNSResolvesDescribe(t *testing.T) {
	t.Parallel()
	c := mustBuild(t, "dns.resolves", map[string]any{"name": "db.example.com", "expect": []string{"10.0.0.5"}, "server": "10.0.0.53"})
	if got, want := c.Describe(nil), "dns name db.example.com resolves to 10.0.0.5 at 10.0.0.53:53"; got != want {
		t.Errorf("describe = %q, want %q", got, want)
	}
}
