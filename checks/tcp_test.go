package checks

import (
	"net"
	"testing"
)

func TestTCPReachableRun(t *testing.T) {
	t.Parallel()
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
			_ = conn.Close()
		}
	}()
	closed := closedPort(t)

	tests := []struct {
		name    string
		address string
		status  Status
		want    []string
	}{
		{name: "listening port passes", address: l.Addr().String(),
			status: Pass, want: []string{"tcp " + l.Addr().String() + " accepted a connection in "}},
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
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan error, 1)
	go func() {
		conn, err := l.Accept()
		if err == nil {
			_ = conn.Close()
		}
		accepted <- err
	}()
	c := mustBuild(t, "tcp.reachable", map[string]any{"address": l.Addr().String()})
	assertResult(t, c.Run(testCtx(t, 0), nil), Pass, nil, nil)
	ctx := testCtx(t, 0)
	select {
	case err := <-accepted:
		if err != nil {
			t.Fatalf("listener: %v", err)
		}
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
