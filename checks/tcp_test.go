package checks

import (
	"net"
	"testing"
)

func TestTCPReachableRun(t *testing.T) {
	t.Parallel()
	listening := serveTCP(t, func(conn net.Conn) { _ = conn.Close() })
	closed := closedPort(t)

	tests := []struct {
		name    string
		address string
		status  Status
		want    []string
	}{
		{name: "listening port passes", address: listening,
			status: Pass, want: []string{"tcp " + listening + " accepted a connection in "}},
		{name: "closed port fails as refused", address: closed,
			status: Fail, want: []string{"tcp " + closed + ": connection refused", "a tcp connection to " + closed}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := mustBuild(t, "tcp.reachable", map[string]any{"address": tc.address})
			r := c.Run(testCtx(t, 0), nil)
			assertResult(t, r, tc.status, tc.want, nil)
			if tc.status == Pass {
				if _, ok := r.Values["connect_time"]; !ok {
					t.Error("a pass records no connect_time")
				}
			}
		})
	}
}

// TestTCPReachableAccepts checks that a pass means the listener really saw
// the connection.
func TestTCPReachableAccepts(t *testing.T) {
	t.Parallel()
	accepted := make(chan struct{}, 1)
	addr := serveTCP(t, func(conn net.Conn) {
		_ = conn.Close()
		select {
		case accepted <- struct{}{}:
		default:
		}
	})
	c := mustBuild(t, "tcp.reachable", map[string]any{"address": addr})
	assertResult(t, c.Run(testCtx(t, 0), nil), Pass, nil, nil)
	ctx := testCtx(t, 0)
	select {
	case <-accepted:
	case <-ctx.Done():
		t.Fatal("the listener saw no connection")
	}
}

func TestTCPReachableMalformed(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"127.0.0.1", "127.0.0.1:", ":5432", "::1:5432", ""} {
		t.Run(addr, func(t *testing.T) {
			t.Parallel()
			if _, err := build(t, "tcp.reachable", map[string]any{"address": addr}); err == nil {
				t.Errorf("new accepted address %q", addr)
			}
			// Built directly, past New, a malformed address is an error
			// verdict, not a failure.
			r := (&TCPReachable{Address: addr}).Run(testCtx(t, 0), nil)
			assertResult(t, r, Error, []string{"address"}, nil)
		})
	}
}

func TestTCPReachableDescribe(t *testing.T) {
	t.Parallel()
	c := mustBuild(t, "tcp.reachable", map[string]any{"address": "127.0.0.1:5432"})
	if got, want := c.Describe(nil), "tcp 127.0.0.1:5432 accepts connections"; got != want {
		t.Errorf("describe = %q, want %q", got, want)
	}
}
