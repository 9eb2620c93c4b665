package spec

import (
	"strings"
	"testing"
)

func TestInventoryRouter(t *testing.T) {
	t.Parallel()
	const nodes = `cluster: c
nodes:
  pg1: {conninfo: "host=127.0.0.1 port=5432"}
  pg2: {conninfo: "host=127.0.0.1 port=5433"}
`
	tests := []struct {
		name    string
		router  string
		wantErr []string // every one in the error; none: valid
	}{
		{name: "full", router: `router:
  kind: haproxy
  socket: "unix:/run/haproxy/admin.sock"
  backend: postgres
  servers: {pg1: db1, pg2: db2}
  endpoint: "host=10.0.0.9 port=5000 user=app dbname=app"
  host: {transport: ssh, address: "root@lb1"}
`},
		{name: "tcp socket, servers named as nodes", router: `router: {kind: haproxy, socket: "tcp:127.0.0.1:9999", backend: pg, endpoint: "host=127.0.0.1 port=5000"}
`},
		{name: "missing keys", router: `router: {kind: haproxy}
`, wantErr: []string{`missing key "socket"`, `missing key "backend"`, `missing key "endpoint"`}},
		{name: "bad kind and socket", router: `router: {kind: nginx, socket: "/run/admin.sock", backend: pg, endpoint: "host=h"}
`, wantErr: []string{`unknown kind "nginx"`, `want unix:/path or tcp:host:port`}},
		{name: "relative unix socket", router: `router: {kind: haproxy, socket: "unix:admin.sock", backend: pg, endpoint: "host=h"}
`, wantErr: []string{"absolute path"}},
		{name: "server of no node", router: `router: {kind: haproxy, socket: "unix:/a", backend: pg, endpoint: "host=h", servers: {pg9: x}}
`, wantErr: []string{`"pg9" is not a node`}},
		{name: "unknown key", router: `router: {kind: haproxy, socket: "unix:/a", backend: pg, endpoint: "host=h", frontend: x}
`, wantErr: []string{"frontend"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// The router before the nodes: servers are checked against
			// every node wherever the nodes come in the file.
			inv, err := LoadInventory("inv.yaml", []byte(tc.router+nodes))
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("LoadInventory: %v", err)
				}
				r := inv.Cluster.Router
				if r == nil || r.Kind != "haproxy" || r.Backend == "" || r.Endpoint == "" {
					t.Fatalf("router = %+v", r)
				}
				if tc.name == "full" {
					if r.Server("pg1") != "db1" || r.Host == nil || r.Host.Transport != "ssh" {
						t.Errorf("router = %+v", r)
					}
				} else if r.Server("pg2") != "pg2" || r.Host != nil {
					t.Errorf("router = %+v; want servers named as nodes, no host", r)
				}
				return
			}
			if err == nil {
				t.Fatal("LoadInventory: no error")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
