package checks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
)

func init() {
	Register(Definition{
		Kind: "tcp.reachable",
		Doc:  "a tcp connection to an address succeeds",
		Params: []params.Spec{
			{Name: "address", Type: params.String, Required: true,
				Doc: "host:port to connect to, e.g. 10.0.0.5:5432 or [::1]:6432"},
		},
		New: newTCPReachable,
	})
}

// TCPReachable passes when a TCP connection to Address succeeds. It opens the
// connection and closes it at once, sending nothing, so the server sees at
// most a connection that went away.
type TCPReachable struct {
	Address string // host:port
}

var _ Check = (*TCPReachable)(nil)

func newTCPReachable(v params.Values) (Check, error) {
	c := &TCPReachable{Address: v.String("address")}
	if err := checkHostPort(c.Address); err != nil {
		return nil, err
	}
	return c, nil
}

// Describe implements Check.
func (c *TCPReachable) Describe(*cluster.Target) string {
	return fmt.Sprintf("tcp %s accepts connections", c.Address)
}

// Run implements Check.
func (c *TCPReachable) Run(ctx context.Context, _ *cluster.Target) Result {
	if err := checkHostPort(c.Address); err != nil {
		return Errored(err)
	}
	start := time.Now()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.Address)
	elapsed := time.Since(start)
	wanted := fmt.Sprintf("a tcp connection to %s", c.Address)
	if err != nil {
		return Failed(fmt.Sprintf("tcp %s: %s after %s", c.Address, dialProblem(err), roundDuration(elapsed)), wanted)
	}
	remote := conn.RemoteAddr().String()
	_ = conn.Close()
	r := Passed(fmt.Sprintf("tcp %s accepted a connection in %s", c.Address, roundDuration(elapsed)))
	r.Values = map[string]any{"connect_time": elapsed.String(), "remote": remote}
	return r
}

// checkHostPort rejects an address that is not host:port with a port.
func checkHostPort(address string) error {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("address %q is not host:port: %w", address, err)
	}
	if port == "" {
		return fmt.Errorf("address %q has no port", address)
	}
	if host == "" {
		return fmt.Errorf("address %q has no host", address)
	}
	return nil
}

// dialProblem says in a few words why a connection was not made.
func dialProblem(err error) string {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, context.DeadlineExceeded):
		return "no connection before the time limit"
	case errors.Is(err, context.Canceled):
		return "connecting was cancelled"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return fmt.Sprintf("host name %q did not resolve (not found)", dnsErr.Name)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "connection timed out"
	}
	return err.Error()
}

// roundDuration rounds d for messages: microseconds below a millisecond,
// milliseconds below a minute.
func roundDuration(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d.Round(time.Microsecond)
	}
	return d.Round(time.Millisecond)
}
