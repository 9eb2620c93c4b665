package steps

import (
	"context"
	"strings"
	"testing"

	"github.com/switchover/switchover/internal/cluster"
)

func routerTarget(router *cluster.Router, lines *[]string) *cluster.Target {
	c := &cluster.Cluster{Name: "c", Router: router, Nodes: map[string]*cluster.Node{}, Order: []string{"pg1", "pg2", "pg3"}}
	for _, n := range c.Order {
		c.Nodes[n] = &cluster.Node{Name: n, Conninfo: "host=127.0.0.1"}
	}
	return &cluster.Target{Cluster: c, Facts: &cluster.Facts{}, Output: func(l string) { *lines = append(*lines, l) }}
}

func TestHAProxyStepsDescribe(t *testing.T) {
	t.Parallel()
	router := &cluster.Router{Kind: "haproxy", Socket: "unix:/run/haproxy/admin.sock", Backend: "pg", Servers: map[string]string{"pg1": "db1"}}
	tests := []struct {
		name string
		step Step
		want string
	}{
		{"drain", &HAProxyDrain{Node: "pg1", State: "maint", Shutdown: true, Enabled: true},
			"set server pg/db1 state maint; shutdown sessions server pg/db1"},
		{"drain without closing sessions", &HAProxyDrain{Node: "pg2", State: "drain", Enabled: true},
			"set server pg/pg2 state drain"},
		{"ready, others maint", &HAProxyReady{Node: "pg2", Others: "maint", Enabled: true},
			"set server pg/db1 state maint; set server pg/pg3 state maint; set server pg/pg2 state ready; set server pg/pg2 health up"},
		{"ready, others down", &HAProxyReady{Node: "pg2", Others: "down", Enabled: true},
			"set weight pg/db1 0; set server pg/db1 state ready; set server pg/db1 health down; set weight pg/db1 100%; " +
				"set weight pg/pg3 0; set server pg/pg3 state ready; set server pg/pg3 health down; set weight pg/pg3 100%; set server pg/pg2 state ready; set server pg/pg2 health up"},
		{"ready, others kept", &HAProxyReady{Node: "pg1", Others: "keep", Enabled: true},
			"set server pg/db1 state ready; set server pg/db1 health up"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var lines []string
			e := tc.step.Describe(routerTarget(router, &lines))
			if e.Command != tc.want || !strings.Contains(e.Node, "unix:/run/haproxy/admin.sock") {
				t.Errorf("Describe = %+v\nwant command %s", e, tc.want)
			}
		})
	}
}

// Without a router, or with the router steps turned off, the steps say
// so and succeed without touching anything: the playbooks carry them for
// every cluster.
func TestHAProxyStepsDoNothingWithoutARouter(t *testing.T) {
	t.Parallel()
	router := &cluster.Router{Kind: "haproxy", Socket: "unix:/nonexistent/admin.sock", Backend: "pg"}
	tests := []struct {
		name   string
		router *cluster.Router
		step   Step
		want   string
	}{
		{"drain, no router", nil, &HAProxyDrain{Node: "pg1", State: "maint", Enabled: true}, "no router in the inventory"},
		{"ready, no router", nil, &HAProxyReady{Node: "pg2", Others: "maint", Enabled: true}, "no router in the inventory"},
		{"drain, turned off", router, &HAProxyDrain{Node: "pg1", State: "maint"}, "left to its health checks"},
		{"ready, turned off", router, &HAProxyReady{Node: "pg2", Others: "down"}, "left to its health checks"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var lines []string
			tg := routerTarget(tc.router, &lines)
			if err := tc.step.Apply(context.Background(), tg); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if len(lines) != 1 || !strings.Contains(lines[0], tc.want) {
				t.Errorf("output %q; want one line saying %q", lines, tc.want)
			}
			if e := tc.step.Describe(tg); e.Command != "(none)" || !strings.Contains(e.Changes, tc.want) {
				t.Errorf("Describe = %+v", e)
			}
		})
	}
	// With the router on and its socket missing, the step fails and says where.
	var lines []string
	err := (&HAProxyDrain{Node: "pg1", State: "maint", Enabled: true}).Apply(context.Background(), routerTarget(router, &lines))
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/admin.sock") || !strings.Contains(err.Error(), "unchanged") {
		t.Errorf("drain on a missing socket: %v", err)
	}
}
