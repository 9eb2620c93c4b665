package checks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
)

func init() {
	Register(Definition{
		Kind: "dns.resolves",
		Doc:  "a name resolves, optionally to every one of the expected addresses",
		Params: []params.Spec{
			{Name: "name", Type: params.String, Required: true,
				Doc: "host name to resolve, e.g. db-primary.example.com"},
			{Name: "expect", Type: params.Strings,
				Doc: "ip addresses that must all be among the resolved ones; others may be there too"},
			{Name: "server", Type: params.String,
				Doc: "host:port of a dns server to ask instead of the system resolver (port 53 when left out)"},
		},
		New: newDNSResolves,
	})
}

// DNSResolves passes when Name resolves and, when Expect is set, every
// address in it is among the answers. After a switchover the name clients
// use must point at the new primary; this is how a runbook waits for that.
type DNSResolves struct {
	Name   string
	Expect []netip.Addr
	Server string // host:port; "" is the system resolver
}

var _ Check = (*DNSResolves)(nil)

func newDNSResolves(v params.Values) (Check, error) {
	c := &DNSResolves{Name: strings.TrimSpace(v.String("name"))}
	if c.Name == "" {
		return nil, errors.New("name is empty")
	}
	for _, e := range v.Strings("expect") {
		a, err := netip.ParseAddr(strings.TrimSpace(e))
		if err != nil {
			return nil, fmt.Errorf("expect: %q is not an ip address", e)
		}
		c.Expect = append(c.Expect, a.Unmap())
	}
	if s := strings.TrimSpace(v.String("server")); s != "" {
		server, err := dnsServerAddress(s)
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		c.Server = server
	}
	return c, nil
}

// dnsServerAddress returns s as host:port, adding port 53 when it has none.
func dnsServerAddress(s string) (string, error) {
	if _, _, err := net.SplitHostPort(s); err == nil {
		return s, checkHostPort(s)
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return net.JoinHostPort(a.String(), "53"), nil
	}
	if strings.ContainsAny(s, ":[]") {
		return "", fmt.Errorf("%q is not host:port", s)
	}
	return net.JoinHostPort(s, "53"), nil
}

// Describe implements Check.
func (c *DNSResolves) Describe(*cluster.Target) string {
	s := fmt.Sprintf("dns name %s resolves", c.Name)
	if len(c.Expect) > 0 {
		s += " to " + joinAddrs(c.Expect)
	}
	if c.Server != "" {
		s += " at " + c.Server
	}
	return s
}

// Run implements Check.
func (c *DNSResolves) Run(ctx context.Context, _ *cluster.Target) Result {
	asked := "the system resolver"
	r := &net.Resolver{}
	if c.Server != "" {
		asked = c.Server
		server := c.Server
		r = &net.Resolver{
			PreferGo: true,
			Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, server)
			},
		}
	}
	wanted := fmt.Sprintf("%s to resolve", c.Name)
	if len(c.Expect) > 0 {
		wanted = fmt.Sprintf("%s to resolve to %s", c.Name, joinAddrs(c.Expect))
	}
	got, err := r.LookupNetIP(ctx, "ip", c.Name)
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return Failed(fmt.Sprintf("%s does not resolve: %s says %s", c.Name, asked, dnsErr.Err), wanted)
		}
		// The error names the resolv.conf server even when Dial went to
		// ours: report its cause only.
		why := err.Error()
		switch {
		case ctx.Err() != nil:
			why = "no answer before the time limit"
		case errors.As(err, &dnsErr) && dnsErr.Err != "":
			why = dnsErr.Err
		}
		return Errored(fmt.Errorf("resolve %s with %s: %s", c.Name, asked, why))
	}
	seen := make([]netip.Addr, 0, len(got))
	for _, a := range got {
		if a = a.Unmap(); !slices.Contains(seen, a) {
			seen = append(seen, a)
		}
	}
	slices.SortFunc(seen, func(a, b netip.Addr) int { return a.Compare(b) })
	var missing []netip.Addr
	for _, e := range c.Expect {
		if !slices.Contains(seen, e) {
			missing = append(missing, e)
		}
	}
	values := map[string]any{"addresses": addrStrings(seen)}
	if len(missing) > 0 {
		res := Failed(fmt.Sprintf("%s resolves to %s, missing %s", c.Name, joinAddrs(seen), joinAddrs(missing)), wanted)
		res.Values = values
		return res
	}
	res := Passed(fmt.Sprintf("%s resolves to %s", c.Name, joinAddrs(seen)))
	res.Values = values
	return res
}

func addrStrings(as []netip.Addr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

func joinAddrs(as []netip.Addr) string { return strings.Join(addrStrings(as), ", ") }
