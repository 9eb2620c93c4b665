package pg

import (
	"context"
	"testing"
	"time"
)

func TestSameEndpoint(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tests := []struct {
		a, b string
		want bool
	}{
		{"127.0.0.1:5432", "127.0.0.1:5432", true},
		{"localhost:5432", "127.0.0.1:5432", true},
		{"[::1]:5432", "localhost:5432", true},
		{"::1:5432", "[::1]:5432", true}, // Inspect's form of an IPv6 upstream
		{"127.0.0.1:5432", "127.0.0.1:5433", false},
		{"10.0.0.5:5432", "10.0.0.6:5432", false},
		{"DB1.example:5432", "db1.example:5432", true},
		{"/var/run/postgresql:5432", "/var/run/postgresql:5432", true},
		{"/var/run/postgresql:5432", "localhost:5432", false},
		{"", "127.0.0.1:5432", false},
		{"127.0.0.1", "127.0.0.1:5432", false},
	}
	for _, tc := range tests {
		if got := SameEndpoint(ctx, tc.a, tc.b); got != tc.want {
			t.Errorf("SameEndpoint(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
