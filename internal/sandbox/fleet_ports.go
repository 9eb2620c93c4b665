package sandbox

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// FleetStride is how many ports each cluster of a fleet sandbox owns:
// cluster cI's PgBouncer listens on port-base+FleetStride*(I-1), its
// primary on the next port, its standbys on the ports after. Round
// numbers, so that a port tells its cluster at a glance.
const FleetStride = 10

// MaxFleetStandbys is the most standbys a fleet's cluster has room for in
// its FleetStride ports (one is the PgBouncer's, one the primary's).
const MaxFleetStandbys = FleetStride - 2

// MaxFleetClusters bounds `sandbox up --clusters`.
const MaxFleetClusters = 20

// ClusterPorts is where one cluster of a fleet sandbox listens.
type ClusterPorts struct {
	Name     string `json:"name"`     // c1, c2, ...
	Pooler   int    `json:"pooler"`   // PgBouncer
	Primary  int    `json:"primary"`  // pg1
	Standbys []int  `json:"standbys"` // pg2, pg3, ...
}

// Base is the first port of the cluster's range, its PgBouncer's.
func (c ClusterPorts) Base() int { return c.Pooler }

// Ports lists every port the cluster listens on, in order.
func (c ClusterPorts) Ports() []int {
	return append([]int{c.Pooler, c.Primary}, c.Standbys...)
}

// Range is the cluster's ports as "first-last".
func (c ClusterPorts) Range() string {
	p := c.Ports()
	return fmt.Sprintf("%d-%d", p[0], p[len(p)-1])
}

// FleetName is the name of the fleet's cluster i (1-based).
func FleetName(i int) string { return fmt.Sprintf("c%d", i) }

// FleetLayout places clusters clusters of standbys standbys each from
// base on: cluster cI on base+FleetStride*(I-1) and the ports after.
func FleetLayout(base, clusters, standbys int) ([]ClusterPorts, error) {
	if clusters < 1 || clusters > MaxFleetClusters {
		return nil, fmt.Errorf("--clusters %d: want 1 to %d", clusters, MaxFleetClusters)
	}
	if standbys < 1 || standbys > MaxFleetStandbys {
		return nil, fmt.Errorf("--standbys %d: a fleet's cluster has room for 1 to %d (%d ports each)", standbys, MaxFleetStandbys, FleetStride)
	}
	if last := base + FleetStride*(clusters-1) + standbys + 1; base < 1 || last > 65535 {
		return nil, fmt.Errorf("--port-base %d: %d clusters need ports %d to %d; want them between 1 and 65535", base, clusters, base, last)
	}
	out := make([]ClusterPorts, clusters)
	for i := range out {
		b := base + FleetStride*i
		c := ClusterPorts{Name: FleetName(i + 1), Pooler: b, Primary: b + 1}
		for k := 1; k <= standbys; k++ {
			c.Standbys = append(c.Standbys, b+1+k)
		}
		out[i] = c
	}
	return out, nil
}

// checkFleetPorts refuses a layout any of whose ports is taken on
// 127.0.0.1, naming every taken port and its cluster.
func checkFleetPorts(layout []ClusterPorts) error {
	var taken []string
	for _, c := range layout {
		var ports []string
		for _, p := range c.Ports() {
			if !portFree(p) {
				ports = append(ports, strconv.Itoa(p))
			}
		}
		if len(ports) > 0 {
			taken = append(taken, fmt.Sprintf("cluster %s (ports %s): %s taken on 127.0.0.1", c.Name, c.Range(), plural(ports, "port")))
		}
	}
	if len(taken) > 0 {
		return fmt.Errorf("%s; pick another --port-base, or free them", strings.Join(taken, "; "))
	}
	return nil
}

// plural says "port 5" or "ports 5, 6".
func plural(items []string, noun string) string {
	if len(items) == 1 {
		return noun + " " + items[0]
	}
	return noun + "s " + strings.Join(items, ", ")
}

// portFree reports whether port can be listened on at 127.0.0.1.
func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}
