package checks

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/transport"
)

func init() {
	Register(Definition{
		Kind: "host.ready",
		Doc:  "every host the run acts on takes commands: the login works (ssh), the switch to the database user works (sudo -n), pg_ctl and pg_controldata are in bin_dir, data_dir is there and owned by that user; the pooler's config can be rewritten",
		New:  func(params.Values) (Check, error) { return &HostReady{}, nil },
	})
}

// HostReady passes when every host a switchover runs commands on is ready
// for them: each node with a data_dir, and the pooler's host when the
// inventory gives a config file to rewrite. A host that cannot be reached,
// a sudo that wants a password, a bin_dir without pg_ctl or a data_dir of
// the wrong owner would otherwise be found by pg_ctl stop with the clients
// already held; found here, the run is refused before anything is held.
type HostReady struct{}

var _ Check = (*HostReady)(nil)

// readyHost is one host to look at: a node, or the pooler.
type readyHost struct {
	name    string // the node's name, or "pooler"
	ex      transport.Executor
	err     error // the inventory does not say how to reach it
	command string
}

// hosts lists what the check looks at, in the inventory's order.
func (c *HostReady) hosts(t *cluster.Target) []readyHost {
	if t == nil || t.Cluster == nil {
		return nil
	}
	var out []readyHost
	for _, name := range t.Cluster.NodeOrder() {
		n := t.Cluster.Nodes[name]
		if n == nil || strings.TrimSpace(n.DataDir) == "" {
			continue
		}
		ex, err := t.Cluster.Executor(name)
		out = append(out, readyHost{name: name, ex: ex, err: err, command: nodeReadyCommand(n)})
	}
	for _, p := range t.Cluster.Poolers {
		if p.Config != "" {
			ex, err := p.Host.Executor()
			out = append(out, readyHost{name: t.Cluster.PoolerLabel(p), ex: ex, err: err, command: poolerReadyCommand(p.Config)})
		}
	}
	return out
}

// nodeReadyCommand is the read-only script that looks at a node's host as
// the user the steps run as: it prints one line per problem and exits 1
// when there is one.
func nodeReadyCommand(n *cluster.Node) string {
	q := transport.ShellQuote
	var b strings.Builder
	b.WriteString("u=$(id -un); r=0; ")
	for _, program := range []string{"pg_ctl", "pg_controldata"} {
		if n.BinDir == "" {
			fmt.Fprintf(&b, "command -v %s >/dev/null 2>&1 || { echo %s; r=1; }; ", program, q("no "+program+" on the PATH (the inventory gives no bin_dir)"))
			continue
		}
		p := path.Join(n.BinDir, program)
		fmt.Fprintf(&b, "[ -f %s ] && [ -x %s ] || { echo %s\"$u\"; r=1; }; ", q(p), q(p), q("bin_dir "+n.BinDir+" lacks "+program+" executable by "))
	}
	d := q(n.DataDir)
	fmt.Fprintf(&b, "if [ -d %s ]; then o=$(stat -c %%U %s 2>/dev/null || stat -f %%Su %s); [ \"$o\" = \"$u\" ] || { echo %s\"$o, not $u\"; r=1; }; "+
		"else echo %s\"$u\"; r=1; fi; exit $r",
		d, d, d, q("data_dir "+n.DataDir+" is owned by "), q("data_dir "+n.DataDir+" is missing or not a directory reachable by "))
	return b.String()
}

// poolerReadyCommand looks at the pooler's config file as the steps that
// rewrite it will: readable, writable, and a new file can go beside it.
func poolerReadyCommand(config string) string {
	q := transport.ShellQuote
	dir := path.Dir(config)
	return fmt.Sprintf("u=$(id -un); r=0; if [ -f %[1]s ]; then [ -r %[1]s ] && [ -w %[1]s ] || { echo %[2]s\"$u\"; r=1; }; "+
		"[ -w %[3]s ] || { echo %[4]s\"$u\"; r=1; }; else echo %[5]s\"$u\"; r=1; fi; exit $r",
		q(config), q("pooler config "+config+" is not readable and writable by "), q(dir),
		q("pooler config directory "+dir+" is not writable by "), q("pooler config "+config+" is missing or not reachable by "))
}

// Describe implements Check.
func (c *HostReady) Describe(t *cluster.Target) string {
	hosts := c.hosts(t)
	if len(hosts) == 0 {
		return "every host with a data_dir, and the pooler's when it has a config, takes commands (the inventory names none)"
	}
	parts := make([]string, 0, len(hosts))
	for _, h := range hosts {
		if h.err != nil {
			parts = append(parts, fmt.Sprintf("%s: %v", h.name, h.err))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s on %s: %s", h.name, h.ex.Where(), h.command))
	}
	return "every host takes commands (login, user switch, paths): " + strings.Join(parts, "; ")
}

// Run implements Check. The hosts are looked at all at once: a host that
// does not answer costs its connection timeout once, not once per host.
func (c *HostReady) Run(ctx context.Context, t *cluster.Target) Result {
	hosts := c.hosts(t)
	if len(hosts) == 0 {
		return Passed("no host to run commands on: no node has a data_dir and the pooler has no config")
	}
	problems := make([][]string, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		if h.err != nil {
			problems[i] = []string{h.err.Error()}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			problems[i] = hostProblems(ctx, h)
		}()
	}
	wg.Wait()
	var bad, good []string
	values := map[string]any{}
	for i, h := range hosts {
		where := h.name
		if h.ex != nil {
			where = fmt.Sprintf("%s (%s)", h.name, h.ex.Where())
		}
		if len(problems[i]) == 0 {
			good = append(good, where)
			values[h.name] = "ready"
			continue
		}
		bad = append(bad, where+": "+strings.Join(problems[i], "; "))
		values[h.name] = strings.Join(problems[i], "; ")
	}
	if len(bad) > 0 {
		r := Failed(strings.Join(bad, " | "), "every host reachable, the user switch working, pg_ctl and pg_controldata in bin_dir, data_dir owned by the user the steps run as")
		r.Values = values
		return r
	}
	r := Passed("ready: " + strings.Join(good, ", "))
	r.Values = values
	return r
}

// hostProblems runs the host's command and says what is wrong, nothing
// when all is well.
func hostProblems(ctx context.Context, h readyHost) []string {
	out, err := h.ex.Run(ctx, "LC_ALL=C; export LC_ALL; "+h.command)
	if err != nil {
		return []string{loginProblem(err)}
	}
	if out.ExitCode == 0 {
		return nil
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out.Stdout), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		lines = []string{fmt.Sprintf("the check exited %d: %s", out.ExitCode, strings.ReplaceAll(tailLines(out.Combined(), 3, 300), "\n", " | "))}
	}
	return lines
}

// loginReasons are the reasons ssh gives for a failed connection or login,
// as a DBA would name them.
var loginReasons = []string{
	"connection refused", "connection timed out", "no route to host", "network is unreachable",
	"could not resolve hostname", "name or service not known", "permission denied (publickey",
	"host key verification failed", "connection closed", "connection reset",
}

// loginProblem names why a command could not run on a host: ssh's reason
// first ("connection refused"), then the whole message.
func loginProblem(err error) string {
	msg := err.Error()
	if !errors.Is(err, transport.ErrConnection) {
		return msg
	}
	low := strings.ToLower(msg)
	for _, r := range loginReasons {
		if strings.Contains(low, r) {
			if r == "permission denied (publickey" {
				r = "permission denied (publickey)"
			}
			return r + ": " + msg
		}
	}
	return "ssh login failed: " + msg
}
