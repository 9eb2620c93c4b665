package haproxy

import (
	"context"
	"encoding/csv"
	"fmt"
	"strconv"
	"strings"
)

// OpState is a server's operational state, as its health checks (or a
// forced health) left it. The zero value is unknown.
type OpState int

// The operational states `show servers state` reports (srv_op_state+1).
const (
	OpUnknown  OpState = iota
	OpStopped          // down: checks fail, or forced down
	OpStarting         // coming up (slowstart)
	OpRunning          // up
	OpStopping         // going down (graceful)
)

// String names the operational state.
func (o OpState) String() string {
	switch o {
	case OpStopped:
		return "down"
	case OpStarting:
		return "starting"
	case OpRunning:
		return "up"
	case OpStopping:
		return "stopping"
	}
	return "unknown"
}

// Admin state flags of srv_admin_state. 0x04 (disabled in the
// configuration) and 0x40 (address set at run time) are markers that stay
// when the server is set ready: they are no maintenance of their own.
const (
	adminForcedMaint    = 0x01
	adminInheritedMaint = 0x02
	adminForcedDrain    = 0x08
	adminInheritedDrain = 0x10
	adminResolvMaint    = 0x20
	adminMaint          = adminForcedMaint | adminInheritedMaint | adminResolvMaint
	adminDrain          = adminForcedDrain | adminInheritedDrain
)

// Server is one server of a backend as the runtime API shows it.
type Server struct {
	Name    string
	Addr    string
	Port    int
	Op      OpState
	Admin   int // srv_admin_state's flags
	Weight  int // srv_uweight: 0 takes no new connections either
	Checked bool
}

// State is the server's admin state: maint, drain or ready.
func (s Server) State() AdminState {
	switch {
	case s.Admin&adminMaint != 0:
		return Maint
	case s.Admin&adminDrain != 0:
		return Drain
	}
	return Ready
}

// Routable reports whether HAProxy sends new connections to the server:
// ready, up, and weighted.
func (s Server) Routable() bool {
	return s.State() == Ready && (s.Op == OpRunning || s.Op == OpStarting) && s.Weight > 0
}

// String is the server as a line of output: "pg1 127.0.0.1:5432 ready up".
func (s Server) String() string {
	return fmt.Sprintf("%s %s:%d %s %s", s.Name, s.Addr, s.Port, s.State(), s.Op)
}

// ServersStateCommand is the runtime API command that lists a backend's servers.
func ServersStateCommand(backend string) string { return "show servers state " + backend }

// Servers returns the servers of a backend, in the configuration's order.
func (c *Client) Servers(ctx context.Context, backend string) ([]Server, error) {
	if err := validName("backend", backend); err != nil {
		return nil, err
	}
	ans, err := c.Command(ctx, ServersStateCommand(backend))
	if err != nil {
		return nil, err
	}
	srv, err := ParseServersState(ans)
	if err != nil {
		return nil, fmt.Errorf("%s: backend %s: %w", c.Where(), backend, err)
	}
	return srv, nil
}

// ParseServersState reads the answer to `show servers state` (format 1).
func ParseServersState(ans string) ([]Server, error) {
	lines := strings.Split(strings.TrimSpace(ans), "\n")
	if len(lines) == 0 || strings.TrimSpace(lines[0]) != "1" {
		if a := oneLine(ans); strings.Contains(strings.ToLower(a), "backend") {
			return nil, fmt.Errorf("%w: haproxy answered %q", errNoBackend, a)
		}
		return nil, fmt.Errorf("not a servers state of format 1: %q", firstLine(ans))
	}
	var cols map[string]int
	var out []Server
	for _, l := range lines[1:] {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if strings.HasPrefix(l, "#") {
			cols = map[string]int{}
			for i, f := range strings.Fields(strings.TrimPrefix(l, "#")) {
				cols[f] = i
			}
			continue
		}
		if cols == nil {
			return nil, fmt.Errorf("a server line before the header: %q", l)
		}
		f := strings.Fields(l)
		get := func(name string) string {
			if i, ok := cols[name]; ok && i < len(f) {
				return f[i]
			}
			return ""
		}
		num := func(name string) (int, error) {
			n, err := strconv.Atoi(get(name))
			if err != nil {
				return 0, fmt.Errorf("server line %q: %s is not a number", l, name)
			}
			return n, nil
		}
		s := Server{Name: get("srv_name"), Addr: get("srv_addr")}
		var op, e error
		var opn int
		opn, op = num("srv_op_state")
		s.Op = OpState(opn + 1)
		if s.Admin, e = num("srv_admin_state"); e == nil && op == nil {
			s.Weight, e = num("srv_uweight")
		}
		if e == nil && op == nil {
			s.Port, e = num("srv_port")
		}
		if err := firstErr(op, e); err != nil {
			return nil, err
		}
		// srv_check_state bit 0x2 (CHK_ST_ENABLED): health checks run.
		if cs, err := strconv.Atoi(get("srv_check_state")); err == nil {
			s.Checked = cs&0x2 != 0
		}
		out = append(out, s)
	}
	return out, nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

// Stat is one server's line of `show stat`: its status as the stats page
// shows it and its current sessions.
type Stat struct {
	Status   string // "UP", "DOWN", "MAINT", "DRAIN", "UP 1/3", "no check" ...
	Sessions int    // scur: sessions open now
	Check    string // check_status: L4OK, L7OK, L7STS, L4CON ...
}

// Stats returns `show stat` for a backend's servers, by server name.
func (c *Client) Stats(ctx context.Context, backend string) (map[string]Stat, error) {
	if err := validName("backend", backend); err != nil {
		return nil, err
	}
	ans, err := c.Command(ctx, "show stat")
	if err != nil {
		return nil, err
	}
	st, err := ParseStat(ans, backend)
	if err != nil {
		return nil, fmt.Errorf("%s: show stat: %w", c.Where(), err)
	}
	return st, nil
}

// ParseStat reads the CSV `show stat` writes and keeps the servers of backend.
func ParseStat(ans, backend string) (map[string]Stat, error) {
	ans = strings.TrimPrefix(strings.TrimSpace(ans), "# ")
	r := csv.NewReader(strings.NewReader(ans))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("empty answer")
	}
	cols := map[string]int{}
	for i, h := range recs[0] {
		cols[h] = i
	}
	for _, need := range []string{"pxname", "svname", "scur", "status"} {
		if _, ok := cols[need]; !ok {
			return nil, fmt.Errorf("no column %s in %q", need, firstLine(ans))
		}
	}
	get := func(rec []string, name string) string {
		if i, ok := cols[name]; ok && i < len(rec) {
			return rec[i]
		}
		return ""
	}
	out := map[string]Stat{}
	for _, rec := range recs[1:] {
		sv := get(rec, "svname")
		if get(rec, "pxname") != backend || sv == "FRONTEND" || sv == "BACKEND" {
			continue
		}
		n, _ := strconv.Atoi(get(rec, "scur"))
		out[sv] = Stat{Status: get(rec, "status"), Sessions: n, Check: get(rec, "check_status")}
	}
	return out, nil
}
