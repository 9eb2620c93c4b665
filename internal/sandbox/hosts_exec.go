package sandbox

import (
	"context"
	"errors"
	"io"
	"strings"

	"github.com/switchover/switchover/internal/transport"
)

// nsExec runs commands in a host's network namespace as the servers' user,
// the way a command runs on that host.
type nsExec struct {
	netns string
	user  string
}

var _ transport.InputRunner = nsExec{}

// Where implements transport.Executor.
func (e nsExec) Where() string { return "netns " + e.netns + " as " + e.user }

// Run implements transport.Executor.
func (e nsExec) Run(ctx context.Context, command string) (transport.Output, error) {
	return transport.Local{}.Run(ctx, e.wrap(command))
}

// RunInput implements transport.InputRunner: ip netns exec and runuser
// pass standard input on to the command.
func (e nsExec) RunInput(ctx context.Context, command string, input io.Reader) (transport.Output, error) {
	return transport.Local{}.RunInput(ctx, e.wrap(command), input)
}

// wrap is the local command line that runs command in the namespace as
// the servers' user.
func (e nsExec) wrap(command string) string {
	inner := "/bin/sh -c " + transport.ShellQuote(command)
	if e.user != "" {
		inner = "runuser -u " + transport.ShellQuote(e.user) + " -- " + inner
	}
	return "cd / && HOME=/ exec ip netns exec " + transport.ShellQuote(e.netns) + " " + inner
}

// Isolate cuts a host off the network, as a pulled cable would: its link
// to the bridge goes down. Nothing reaches it and it reaches nothing until
// Heal.
func (s *Sandbox) Isolate(ctx context.Context, host string) error {
	h, err := s.netHost(host)
	if err != nil {
		return err
	}
	_, err = ipCmd(ctx, "", "link", "set", h.Link, "down")
	return err
}

// CutPath cuts the path between two hosts, both ways, as a firewall rule
// between them would, while each still reaches every other host and is
// reached from the bastion: a route in each namespace rejects the other's
// address.
func (s *Sandbox) CutPath(ctx context.Context, a, b string) error {
	ha, err := s.netHost(a)
	if err != nil {
		return err
	}
	hb, err := s.netHost(b)
	if err != nil {
		return err
	}
	if _, err := ipCmd(ctx, ha.Netns, "route", "add", "unreachable", hb.Addr+"/32"); err != nil {
		return err
	}
	_, err = ipCmd(ctx, hb.Netns, "route", "add", "unreachable", ha.Addr+"/32")
	return err
}

// Heal undoes every Isolate and CutPath: every link up, every rejecting
// route gone.
func (s *Sandbox) Heal(ctx context.Context) error {
	if s.Net == nil {
		return errors.New("not a multi-host sandbox (sandbox up --hosts)")
	}
	var errs []error
	for _, h := range s.Net.Hosts {
		if _, err := ipCmd(ctx, "", "link", "set", h.Link, "up"); err != nil {
			errs = append(errs, err)
		}
		out, err := ipCmd(ctx, h.Netns, "route", "show", "type", "unreachable")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "unreachable" {
				if _, err := ipCmd(ctx, h.Netns, "route", "del", "unreachable", f[1]); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}
