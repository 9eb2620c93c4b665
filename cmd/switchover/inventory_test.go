package main

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// closedPort is a port on 127.0.0.1 nothing listens on (it was free a
// moment ago).
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return strconv.Itoa(port)
}

// TestInventoryDiscoverRefusals: what discovery refuses before or without
// a server to ask, with its exit code, and that nothing is written.
func TestInventoryDiscoverRefusals(t *testing.T) {
	t.Parallel()
	const secret = "Never-Shown-77"
	port := closedPort(t)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wants    []string
	}{
		{"no conninfo", nil, exitUsage, []string{"--conninfo is required"}},
		{"conninfo that does not parse", []string{"--conninfo", "host=h port=notaport"}, exitUsage, []string{"--conninfo"}},
		{"bad ports", []string{"--conninfo", "host=127.0.0.1", "--ports", "5432-5400"}, exitUsage, []string{"--ports"}},
		{"bad patroni url", []string{"--conninfo", "host=127.0.0.1", "--patroni", "localhost:8008"}, exitUsage, []string{"--patroni", "not an http or https url"}},
		{"two managers", []string{"--conninfo", "host=127.0.0.1", "--patroni", "http://h:8008", "--pgaf-monitor", "host=h"}, exitUsage, []string{"one manager"}},
		{"bad cluster name", []string{"--conninfo", "host=127.0.0.1", "--cluster", "Prod Main"}, exitUsage, []string{"cluster name"}},
		{"bad ssh pattern", []string{"--conninfo", "host=127.0.0.1", "--ssh", "a b@{host}"}, exitUsage, []string{"--ssh"}},
		{"nothing listens, password given", []string{"--conninfo", "host=127.0.0.1 port=" + port + " user=postgres password=" + secret + " sslmode=disable"},
			exitPrecondition, []string{"the node at 127.0.0.1:" + port + " (--conninfo)", "cannot connect", "nothing written", "--conninfo carries a password"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), "inventory.yaml")
			args := append([]string{"inventory", "discover", "-o", out}, tc.args...)
			code, stdout, stderr := executeT(t, args...)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.wantCode, stdout, stderr)
			}
			for _, w := range tc.wants {
				if !strings.Contains(stderr, w) {
					t.Errorf("want %q in:\n%s", w, stderr)
				}
			}
			if strings.Contains(stdout+stderr, secret) {
				t.Errorf("the password shows in the output:\n%s%s", stdout, stderr)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("%s was written (err %v)", out, err)
			}
		})
	}
}

// TestInventoryDiscoverKeepsAnExistingFile: --out never replaces a file
// without --force, and says so before connecting to anything.
func TestInventoryDiscoverKeepsAnExistingFile(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "inventory.yaml")
	if err := os.WriteFile(out, []byte("mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := executeT(t, "inventory", "discover", "--conninfo", "host=127.0.0.1 port="+closedPort(t), "-o", out)
	if code != exitUsage || !strings.Contains(stderr, "--force") {
		t.Fatalf("exit %d, want %d with a word on --force:\n%s", code, exitUsage, stderr)
	}
	if b, _ := os.ReadFile(out); string(b) != "mine\n" {
		t.Errorf("%s was changed: %q", out, b)
	}
}

func TestParsePorts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{"", nil, false},
		{"5432", []int{5432}, false},
		{"5432, 6432-6434", []int{5432, 6432, 6433, 6434}, false},
		{"0", nil, true},
		{"70000", nil, true},
		{"6434-6432", nil, true},
		{"1-5000", nil, true},
		{"x", nil, true},
	}
	for _, tc := range tests {
		got, err := parsePorts(tc.in)
		if (err != nil) != tc.wantErr || !slices.Equal(got, tc.want) {
			t.Errorf("parsePorts(%q) = %v, %v; want %v, error %t", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}
