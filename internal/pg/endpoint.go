package pg

import (
	"context"
	"net"
	"strings"
)

// SameEndpoint reports whether two host:port pairs are the same server:
// the same port, and hosts that are equal, both loopback (localhost,
// 127.0.0.1, ::1), or names that resolve to a common address. Socket
// directories match only when equal. It is how an upstream a standby
// reports, or a pooler's target, is matched to a node of the inventory.
func SameEndpoint(ctx context.Context, a, b string) bool {
	ha, pa, ok1 := SplitEndpoint(a)
	hb, pb, ok2 := SplitEndpoint(b)
	if !ok1 || !ok2 || pa != pb {
		return false
	}
	if strings.EqualFold(ha, hb) {
		return true
	}
	if strings.HasPrefix(ha, "/") || strings.HasPrefix(hb, "/") {
		return false
	}
	if IsLoopback(ha) && IsLoopback(hb) {
		return true
	}
	addrsA, errA := net.DefaultResolver.LookupHost(ctx, ha)
	addrsB, errB := net.DefaultResolver.LookupHost(ctx, hb)
	if errA != nil || errB != nil {
		return false
	}
	for _, x := range addrsA {
		for _, y := range addrsB {
			if net.ParseIP(x).Equal(net.ParseIP(y)) {
				return true
			}
		}
	}
	return false
}

// SplitEndpoint splits a host:port pair. It also takes the unbracketed
// form Inspect gives an IPv6 upstream ("::1:5432"), whose port is after
// the last colon.
func SplitEndpoint(s string) (host, port string, ok bool) {
	if h, p, err := net.SplitHostPort(s); err == nil {
		return h, p, true
	}
	i := strings.LastIndexByte(s, ':')
	if i <= 0 || i == len(s)-1 {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}
