package steps

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/internal/repmgr"
	"github.com/switchover/switchover/internal/topology"
)

func init() {
	Register(Definition{
		Kind:    "repmgr.pause",
		Manager: cluster.ManagerRepmgr,
		Doc:     "pauses repmgrd on every node (repmgr service pause), so it neither promotes nor follows on its own; succeeds when it is paused already, and then the run does not unpause it",
		New:     func(params.Values) (Step, error) { return &RepmgrPause{Pause: true}, nil },
	})
	Register(Definition{
		Kind:    "repmgr.unpause",
		Manager: cluster.ManagerRepmgr,
		Doc:     "unpauses repmgrd on every node (repmgr service unpause), only when this run paused it; so finally may always run it",
		New:     func(params.Values) (Step, error) { return &RepmgrPause{Pause: false}, nil },
	})
	Register(Definition{
		Kind:    "repmgr.register_after_switchover",
		Manager: cluster.ManagerRepmgr,
		Doc:     "brings repmgr's metadata into agreement with PostgreSQL through repmgr's own commands: the new primary registered as primary (repmgr primary register --force), each standby under the node it streams from (repmgr standby register --force --upstream-node-id); a node already registered right is left alone",
		Params: []params.Spec{
			{Name: "primary", Type: params.Node, Required: true, Doc: "the new primary, as PostgreSQL runs it"},
		},
		New: func(v params.Values) (Step, error) { return &RepmgrRegister{Primary: v.Node("primary")}, nil },
	})
}

// RepmgrPausedFact records whether this run paused repmgrd: "sent" before
// repmgr service pause runs, "yes" once every node shows it paused, "no"
// when it was paused already or this run unpaused it. Only a run that
// paused repmgrd unpauses it, so a run never lifts a pause an operator set.
const RepmgrPausedFact = "repmgr.paused_by_run"

// RepmgrPause is a step that pauses (Pause) or unpauses repmgrd on every
// node, with repmgr's own command, and reads the result back from each
// node's shared memory.
type RepmgrPause struct {
	Pause bool
}

var _ Step = (*RepmgrPause)(nil)

func (s *RepmgrPause) verb() string {
	if s.Pause {
		return "pause"
	}
	return "unpause"
}

// Describe implements Step.
func (s *RepmgrPause) Describe(t *cluster.Target) Effect {
	node := "the first node that answers"
	cmd := "repmgr -f <node's repmgr.conf> service " + s.verb()
	if t != nil && t.Cluster != nil {
		if order := t.Cluster.NodeOrder(); len(order) > 0 {
			node = order[0] + " (else the next node in inventory order)"
			if line, err := repmgr.CommandLine(t.Cluster.Manager, order[0], "service", s.verb()); err == nil {
				cmd = line
			}
		}
	}
	e := Effect{Node: node}
	if s.Pause {
		e.Command = cmd + ", unless every node shows repmgrd paused already; then SELECT repmgr.repmgrd_is_paused() must be true on every node"
		e.Changes = "repmgrd pauses on every node: it no longer promotes a standby or makes one follow on its own"
	} else {
		e.Command = cmd + ", only if this run paused repmgrd; then SELECT repmgr.repmgrd_is_paused() must be false on every node"
		e.Changes = "repmgrd resumes on every node: it fails over on its own again"
	}
	return e
}

// Apply implements Step.
func (s *RepmgrPause) Apply(ctx context.Context, t *cluster.Target) error {
	fail := func(err error) error { return fmt.Errorf("repmgr %s: %w", s.verb(), err) }
	if t.Facts == nil {
		t.Facts = &cluster.Facts{}
	}
	if !s.Pause {
		v, _ := t.Facts.Get(RepmgrPausedFact)
		if v != "yes" && v != "sent" {
			t.Print("repmgr: this run did not pause repmgrd; leaving it as it is")
			return nil
		}
	}
	view := repmgr.Read(ctx, t.Cluster, "")
	if s.Pause && allPaused(view, true) {
		t.Facts.Set(RepmgrPausedFact, "no")
		t.Print("repmgr: repmgrd is paused on every node already; nothing to pause, and this run will not unpause it")
		return nil
	}
	if s.Pause {
		t.Facts.Set(RepmgrPausedFact, "sent")
	}
	var errs []error
	done := false
	for _, node := range t.Cluster.NodeOrder() {
		out, err := repmgr.Run(ctx, t.Cluster, node, "service", s.verb())
		for _, line := range strings.Split(out, "\n") {
			if line = strings.TrimSpace(line); line != "" {
				t.Print("repmgr: " + line)
			}
		}
		if err == nil {
			done = true
			break
		}
		errs = append(errs, err)
	}
	if !done {
		return fail(errors.Join(errs...))
	}
	// Read it back from every node that answers.
	deadline := time.Now().Add(10 * time.Second)
	for {
		view = repmgr.Read(ctx, t.Cluster, "")
		if allPaused(view, s.Pause) {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fail(fmt.Errorf("repmgr service %s ran, but repmgrd's state is %s", s.verb(), daemonStates(view)))
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Print(fmt.Sprintf("repmgr: repmgrd %s on every node that answers (%s)", map[bool]string{true: "paused", false: "unpaused"}[s.Pause], daemonStates(view)))
	if s.Pause {
		t.Facts.Set(RepmgrPausedFact, "yes")
	} else {
		t.Facts.Set(RepmgrPausedFact, "no")
	}
	return nil
}

// allPaused reports whether every node that answers shows repmgrd paused
// (want true) or unpaused (want false), and at least one answers.
func allPaused(v *repmgr.View, want bool) bool {
	answered := 0
	for _, d := range v.Daemons {
		if d.Error != "" {
			continue
		}
		answered++
		if d.Paused != want {
			return false
		}
	}
	return answered > 0
}

func daemonStates(v *repmgr.View) string {
	var out []string
	for _, d := range v.Daemons {
		switch {
		case d.Error != "":
			out = append(out, d.Node+": "+d.Error)
		default:
			out = append(out, fmt.Sprintf("%s: paused=%t running=%t", d.Node, d.Paused, d.Running))
		}
	}
	return strings.Join(out, ", ")
}

// RepmgrRegister brings repmgr's metadata into agreement with PostgreSQL
// after a switchover repmgr did not perform: the new primary registered as
// primary first (repmgr writes its metadata on the primary), then every
// standby under the node it streams from. Each node is registered with its
// own repmgr.conf on its own host, as repmgr's documentation has it; a
// node already registered right is left alone, so running it again changes
// nothing.
type RepmgrRegister struct {
	Primary string
}

var _ Step = (*RepmgrRegister)(nil)

// Describe implements Step.
func (s *RepmgrRegister) Describe(t *cluster.Target) Effect {
	var cmds []string
	if t != nil && t.Cluster != nil {
		if line, err := repmgr.CommandLine(t.Cluster.Manager, s.Primary, "primary", "register", "--force"); err == nil {
			cmds = append(cmds, "on "+s.Primary+": "+line)
		}
		for _, n := range t.Cluster.NodeOrder() {
			if n == s.Primary {
				continue
			}
			if line, err := repmgr.CommandLine(t.Cluster.Manager, n, "standby", "register", "--force", "--upstream-node-id=<id of the node it streams from>"); err == nil {
				cmds = append(cmds, "on "+n+": "+line)
			}
		}
	}
	return Effect{Node: "every node, on its own host",
		Command: "for each node whose repmgr record differs from what PostgreSQL runs: " + strings.Join(cmds, "; "),
		Changes: fmt.Sprintf("repmgr's metadata names %s the primary and each standby under its upstream", s.Primary)}
}

// registerTries is how often a standby's registration is tried: the
// standby reads the new primary's record from its own copy of repmgr.nodes,
// which replication brings a moment after the primary's registration.
const registerTries = 10

// Apply implements Step.
func (s *RepmgrRegister) Apply(ctx context.Context, t *cluster.Target) error {
	fail := func(err error) error { return fmt.Errorf("repmgr register %q as primary: %w", s.Primary, err) }
	top := topology.Inspect(ctx, t.Cluster, topology.Options{StateOnly: true})
	p := top.Node(s.Primary)
	if p == nil || !p.Reachable() || p.Role != topology.RolePrimary {
		return fail(fmt.Errorf("PostgreSQL does not run %s as a primary (%s); nothing registered", s.Primary, nodeSeen(p)))
	}
	v := top.Repmgr
	if v == nil || v.Error != "" {
		return fail(fmt.Errorf("repmgr's view could not be read: %v", viewError(v)))
	}
	if r, ok := v.Record(s.Primary); ok && r.Type == "primary" && r.Active && v.Primary == s.Primary {
		t.Print(fmt.Sprintf("repmgr: %s is registered as the primary already", s.Primary))
	} else {
		if err := runPrint(ctx, t, s.Primary, "primary", "register", "--force"); err != nil {
			return fail(err)
		}
	}
	var problems []string
	for _, n := range top.Nodes {
		if n.Name == s.Primary {
			continue
		}
		switch {
		case !n.Reachable():
			problems = append(problems, fmt.Sprintf("%s does not answer (%s): register it by hand once it streams", n.Name, n.Error))
			continue
		case n.Role != topology.RoleStandby || n.UpstreamNode == "" || !n.Streaming:
			problems = append(problems, fmt.Sprintf("%s is not a standby streaming from a node of the inventory (%s): make it follow %s, then register it", n.Name, nodeSeen(n), s.Primary))
			continue
		}
		up, ok := v.Record(n.UpstreamNode)
		if !ok {
			problems = append(problems, fmt.Sprintf("%s streams from %s, which repmgr has no record of", n.Name, n.UpstreamNode))
			continue
		}
		if r, ok := v.Record(n.Name); ok && r.Type == "standby" && r.Active && r.Upstream == n.UpstreamNode {
			t.Print(fmt.Sprintf("repmgr: %s is registered as a standby of %s already", n.Name, n.UpstreamNode))
			continue
		}
		var err error
		for try := 1; try <= registerTries; try++ {
			if err = runPrint(ctx, t, n.Name, "standby", "register", "--force", "--upstream-node-id="+strconv.Itoa(up.ID)); err == nil || ctx.Err() != nil {
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
		if err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("repmgr register after the switchover to %s: %s is registered as the primary, but: %s", s.Primary, s.Primary, strings.Join(problems, "; "))
	}
	return nil
}

func nodeSeen(n *topology.Node) string {
	switch {
	case n == nil:
		return "not in the inventory"
	case !n.Reachable():
		return "does not answer: " + n.Error
	case n.Role == topology.RoleStandby:
		if !n.Streaming {
			return "a standby, not streaming"
		}
		return "a standby of " + orUnknown(n.UpstreamNode, n.Upstream)
	}
	return string(n.Role)
}

func orUnknown(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func viewError(v *topology.RepmgrView) string {
	if v == nil {
		return "the inventory's manager is not repmgr"
	}
	return v.Error
}

// runPrint runs a repmgr command on node's host and prints its output.
func runPrint(ctx context.Context, t *cluster.Target, node string, args ...string) error {
	out, err := repmgr.Run(ctx, t.Cluster, node, args...)
	for _, line := range strings.Split(out, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			t.Print(fmt.Sprintf("repmgr on %s: %s", node, line))
		}
	}
	return err
}
