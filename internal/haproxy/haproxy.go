// Package haproxy talks to HAProxy's runtime API (its stats socket at
// level admin): one command per connection, the answer read to the end.
// A switchover uses it to move a backend's routing with the primary at
// once, instead of after the health checks' fall and rise intervals.
package haproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/transport"
)

// DefaultTimeout bounds one command when the context has no deadline
// sooner: the runtime API answers in milliseconds, and a socket that does
// not answer must not hold a run.
const DefaultTimeout = 5 * time.Second

// maxAnswer caps what is read of one answer (a `show stat` of a large
// configuration is a few hundred kilobytes).
const maxAnswer = 4 << 20

// Socket is where the runtime API listens.
type Socket struct {
	Network string // "unix" or "tcp"
	Address string // a path, or host:port
}

// String writes the socket as the inventory does: "unix:/path", "tcp:host:port".
func (s Socket) String() string { return s.Network + ":" + s.Address }

// ParseSocket reads "unix:/path" or "tcp:host:port".
func ParseSocket(s string) (Socket, error) {
	network, addr, ok := strings.Cut(s, ":")
	if !ok || addr == "" {
		return Socket{}, fmt.Errorf("socket %q: want unix:/path or tcp:host:port", s)
	}
	switch network {
	case "unix":
		if !strings.HasPrefix(addr, "/") {
			return Socket{}, fmt.Errorf("socket %q: a unix socket needs an absolute path", s)
		}
	case "tcp":
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			return Socket{}, fmt.Errorf("socket %q: want tcp:host:port", s)
		}
	default:
		return Socket{}, fmt.Errorf("socket %q: unknown kind %q (want unix:/path or tcp:host:port)", s, network)
	}
	return Socket{Network: network, Address: addr}, nil
}

// Client sends commands to one HAProxy's runtime API.
type Client struct {
	Socket Socket
	// Exec, when set, runs each command on the socket's host (socat must be
	// installed there): for a unix socket on another machine. Nil dials
	// the socket from this process.
	Exec transport.Executor
}

// Where names the socket for messages and plans.
func (c *Client) Where() string {
	if c.Exec != nil {
		return fmt.Sprintf("haproxy %s on %s", c.Socket, c.Exec.Where())
	}
	return "haproxy " + c.Socket.String()
}

// Command sends one command and returns HAProxy's answer as it wrote it.
// A command holding a newline or a semicolon is refused: the runtime API
// would read it as several commands.
func (c *Client) Command(ctx context.Context, command string) (string, error) {
	if strings.ContainsAny(command, "\n\r;") {
		return "", fmt.Errorf("haproxy command %q: a newline or semicolon would make it several commands", command)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	if c.Exec != nil {
		return c.remote(ctx, command)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, c.Socket.Network, c.Socket.Address)
	if err != nil {
		return "", fmt.Errorf("%s: %w", c.Where(), err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	if _, err := io.WriteString(conn, command+"\n"); err != nil {
		return "", fmt.Errorf("%s: %s: %w", c.Where(), command, err)
	}
	b, err := io.ReadAll(io.LimitReader(conn, maxAnswer))
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return "", fmt.Errorf("%s: %s: %w", c.Where(), command, err)
	}
	return string(b), nil
}

// RemoteCommand is the shell command that sends command to a unix socket
// on another host.
func RemoteCommand(s Socket, command string) string {
	addr := "UNIX-CONNECT:" + s.Address
	if s.Network == "tcp" {
		addr = "TCP:" + s.Address
	}
	return fmt.Sprintf("printf '%%s\\n' %s | socat -t 5 - %s", transport.ShellQuote(command), transport.ShellQuote(addr))
}

func (c *Client) remote(ctx context.Context, command string) (string, error) {
	out, err := c.Exec.Run(ctx, RemoteCommand(c.Socket, command))
	if err != nil {
		return "", fmt.Errorf("%s: %s: %w", c.Where(), command, err)
	}
	if out.ExitCode != 0 {
		return "", fmt.Errorf("%s: %s: socat exit %d: %s", c.Where(), command, out.ExitCode, strings.TrimSpace(out.Combined()))
	}
	return out.Stdout, nil
}

// act sends a command that answers nothing when it succeeds; any answer
// is HAProxy's reason for refusing it ("No such server.", "Permission
// denied": a socket below level admin).
func (c *Client) act(ctx context.Context, command string) error {
	ans, err := c.Command(ctx, command)
	if err != nil {
		return err
	}
	if a := strings.TrimSpace(ans); a != "" {
		return fmt.Errorf("%s: %s: haproxy answered %q", c.Where(), command, oneLine(a))
	}
	return nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// AdminState is a state an operator gives a server through the runtime API.
type AdminState string

// The admin states of `set server ... state`.
const (
	Ready AdminState = "ready" // takes traffic, as its health checks say
	Drain AdminState = "drain" // no new connections except persistent ones; its sessions go on
	Maint AdminState = "maint" // no traffic at all; health checks stop
)

// ParseAdminState reads ready, drain or maint.
func ParseAdminState(s string) (AdminState, error) {
	switch a := AdminState(s); a {
	case Ready, Drain, Maint:
		return a, nil
	}
	return "", fmt.Errorf("unknown server state %q (want ready, drain or maint)", s)
}

// Health is a health a server is forced to through the runtime API; its
// checks, when it has any, go on and may change it again.
type Health string

// The health states of `set server ... health`.
const (
	Up   Health = "up"
	Down Health = "down"
)

func validName(what, s string) error {
	if s == "" || strings.ContainsAny(s, " \t/\n\r;") {
		return fmt.Errorf("haproxy %s %q: not a name", what, s)
	}
	return nil
}

func serverRef(backend, server string) (string, error) {
	if err := validName("backend", backend); err != nil {
		return "", err
	}
	if err := validName("server", server); err != nil {
		return "", err
	}
	return backend + "/" + server, nil
}

// SetStateCommand is the runtime API command that gives a server an
// admin state.
func SetStateCommand(backend, server string, st AdminState) string {
	return fmt.Sprintf("set server %s/%s state %s", backend, server, st)
}

// SetHealthCommand is the runtime API command that forces a server's health.
func SetHealthCommand(backend, server string, h Health) string {
	return fmt.Sprintf("set server %s/%s health %s", backend, server, h)
}

// ShutdownSessionsCommand is the runtime API command that closes every
// session a server has now.
func ShutdownSessionsCommand(backend, server string) string {
	return fmt.Sprintf("shutdown sessions server %s/%s", backend, server)
}

// SetWeightCommand is the runtime API command that sets a server's
// weight: "0" takes it out of the balancing without a state change,
// "100%" gives it back its weight from the configuration.
func SetWeightCommand(backend, server, weight string) string {
	return fmt.Sprintf("set weight %s/%s %s", backend, server, weight)
}

// SetWeight sets a server's weight (see SetWeightCommand).
func (c *Client) SetWeight(ctx context.Context, backend, server, weight string) error {
	if _, err := serverRef(backend, server); err != nil {
		return err
	}
	if err := validName("weight", weight); err != nil {
		return err
	}
	return c.act(ctx, SetWeightCommand(backend, server, weight))
}

// SetState gives a server an admin state.
func (c *Client) SetState(ctx context.Context, backend, server string, st AdminState) error {
	if _, err := serverRef(backend, server); err != nil {
		return err
	}
	if _, err := ParseAdminState(string(st)); err != nil {
		return err
	}
	return c.act(ctx, SetStateCommand(backend, server, st))
}

// SetHealth forces a server's health up or down now, ahead of its checks.
func (c *Client) SetHealth(ctx context.Context, backend, server string, h Health) error {
	if _, err := serverRef(backend, server); err != nil {
		return err
	}
	if h != Up && h != Down {
		return fmt.Errorf("unknown health %q (want up or down)", h)
	}
	return c.act(ctx, SetHealthCommand(backend, server, h))
}

// ShutdownSessions closes every session the server has now: clients
// connected through it see their connection end.
func (c *Client) ShutdownSessions(ctx context.Context, backend, server string) error {
	if _, err := serverRef(backend, server); err != nil {
		return err
	}
	return c.act(ctx, ShutdownSessionsCommand(backend, server))
}

// errNoBackend is the answer to a `show servers state` of a backend that
// does not exist.
var errNoBackend = errors.New("no such backend")

// ForRouter is the client of an inventory's router: its socket, dialed
// from here, or through its host's transport when it names one.
func ForRouter(r *cluster.Router) (*Client, error) {
	if r == nil {
		return nil, errors.New("the inventory has no router")
	}
	if r.Kind != "" && r.Kind != "haproxy" {
		return nil, fmt.Errorf("the inventory's router is %q, not haproxy", r.Kind)
	}
	s, err := ParseSocket(r.Socket)
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	c := &Client{Socket: s}
	if r.Host != nil {
		if c.Exec, err = r.Host.Executor(); err != nil {
			return nil, fmt.Errorf("router host: %w", err)
		}
	}
	return c, nil
}
