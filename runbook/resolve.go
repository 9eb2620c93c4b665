package runbook

import (
	"fmt"
	"strings"
	"time"

	"github.com/switchover/switchover/checks"
	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/steps"
)

// suggest is the shared typo suggester.
func suggest(s string, cands []string) string { return params.Suggest(s, cands) }

// ParseVarFlags turns `--var k=v` arguments into declarations, so that they
// are validated like every other variable.
func ParseVarFlags(args []string) ([]VarDecl, error) {
	var out []VarDecl
	var probs problems
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || !varName.MatchString(k) {
			probs.add(Pos{File: "--var"}, "%q: want NAME=VALUE with NAME of letters, digits and _", a)
			continue
		}
		out = append(out, VarDecl{Name: k, Value: v, HasValue: true, Pos: Pos{File: "--var " + k}})
	}
	return out, probs.err()
}

// resolver turns raw strings into values, recording every problem.
type resolver struct {
	vars  map[string]string
	inv   *Inventory
	probs problems
	used  map[string]bool
}

func (z *resolver) sub(s rawScalar, what string) string {
	for _, r := range refs(s.Value) {
		z.used[r] = true
	}
	out, missing := expand(s.Value, z.vars)
	for _, m := range missing {
		z.probs.add(s.Pos, "%s: undefined variable %q%s", what, m, suggestVar(m, z.vars))
	}
	return out
}

func (z *resolver) duration(s *rawScalar, what string, def time.Duration) time.Duration {
	if s == nil {
		return def
	}
	v := strings.TrimSpace(z.sub(*s, what))
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		z.probs.add(s.Pos, "%s: want a duration such as 500ms, 30s or 5m, got %q", what, v)
		return def
	}
	return d
}

// Resolve joins a runbook, an optional inventory and the operator's
// variables into a Plan, checking everything that depends on them: every
// variable defined, every check and step known with valid parameters, every
// node named in the inventory, rollback and repair sections that exist and
// sit on the right side of the point of no return. The error lists every
// problem.
func Resolve(rb *Runbook, inv *Inventory, overrides []VarDecl) (*Plan, error) {
	builtin := VarDecl{Name: "cluster", Value: rb.Name, HasValue: true, Pos: Pos{File: rb.File}}
	layers := []varSource{{label: "built-in", decls: []VarDecl{builtin}}, {label: "runbook", decls: rb.Vars}}
	cl := &cluster.Cluster{Name: rb.Name, Nodes: map[string]*cluster.Node{}}
	lock := "runbook-" + rb.Name
	if inv != nil {
		builtin.Value = inv.Cluster.Name
		layers[0].decls = []VarDecl{builtin}
		layers = append(layers, varSource{label: "inventory", decls: inv.Vars})
		cl, lock = inv.Cluster, inv.Cluster.Name
	}
	layers = append(layers, varSource{label: "--var", decls: overrides})

	z := &resolver{inv: inv, used: map[string]bool{}}
	z.vars = resolveVars(layers, &z.probs)

	p := &Plan{
		Runbook: rb, Inventory: inv, Cluster: cl, LockName: lock, Vars: z.vars,
		Rollback: map[string][]*Step{}, Repair: map[string][]*Step{},
	}
	for _, o := range overrides {
		p.VarFlags = append(p.VarFlags, o.Name)
	}
	d := DefaultDefaults
	p.Defaults = Defaults{
		Timeout:      z.duration(rb.Defaults.Timeout, "defaults.timeout", d.Timeout),
		CheckTimeout: z.duration(rb.Defaults.CheckTimeout, "defaults.check_timeout", d.CheckTimeout),
		PollInterval: z.duration(rb.Defaults.PollInterval, "defaults.poll_interval", d.PollInterval),
	}
	if rb.Defaults.OnFailure != nil {
		p.Defaults.OnFailure = z.sub(*rb.Defaults.OnFailure, "defaults.on_failure")
	}

	names := map[string]Pos{}
	build := func(raws []*rawStep, sec Section) []*Step {
		out := make([]*Step, 0, len(raws))
		for _, rs := range raws {
			if prev, dup := names[rs.Name]; dup && rs.Name != "" {
				z.probs.add(rs.NamePos, "step %q: the name is already used at %s; step names must be unique", rs.Name, prev)
			} else {
				names[rs.Name] = rs.NamePos
			}
			out = append(out, z.step(rs, sec, p.Defaults))
		}
		return out
	}
	p.Steps = build(rb.Steps, SectionSteps)
	for _, s := range rb.Rollback {
		p.Rollback[s.Name] = build(s.Steps, RollbackSection(s.Name))
	}
	for _, s := range rb.Repair {
		if _, clash := p.Rollback[s.Name]; clash {
			z.probs.add(s.Pos, "repair section %q: a rollback section has the same name; on_failure could not tell them apart", s.Name)
		}
		p.Repair[s.Name] = build(s.Steps, RepairSection(s.Name))
	}
	p.Finally = build(rb.Finally, SectionFinally)

	z.checkFlow(rb, p)

	known := map[string]bool{}
	for _, d := range rb.Vars {
		known[d.Name] = true
	}
	if inv != nil {
		for _, d := range inv.Vars {
			known[d.Name] = true
		}
	}
	for _, o := range overrides {
		if !known[o.Name] && !z.used[o.Name] {
			msg := fmt.Sprintf("--var %s: the runbook neither declares nor uses a variable %q", o.Name, o.Name)
			if s := suggest(o.Name, keys(known)); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			z.probs.add(Pos{}, "%s", msg)
		}
	}
	if err := z.probs.err(); err != nil {
		return nil, err
	}
	return p, nil
}

func keys[T any](m map[string]T) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// checkFlow checks what spans steps: the point of no return, on_failure
// targets, and the keys that only make sense in the main list of steps.
func (z *resolver) checkFlow(rb *Runbook, p *Plan) {
	ponr := -1
	for i, s := range p.Steps {
		if !s.PointOfNoReturn {
			continue
		}
		if ponr >= 0 {
			z.probs.add(s.Pos, "step %q: point_of_no_return is already set on step %q; a runbook has at most one", s.Name, p.Steps[ponr].Name)
			continue
		}
		ponr = i
		p.PointOfNoReturn = s.Name
	}
	target := func(s *Step, after bool, name string, pos Pos) {
		if name == "" || name == "stop" {
			return
		}
		_, isRollback := p.Rollback[name]
		_, isRepair := p.Repair[name]
		switch {
		case !isRollback && !isRepair:
			cands := append(keys(p.Rollback), keys(p.Repair)...)
			msg := fmt.Sprintf("step %q: on_failure names no rollback or repair section %q", s.Name, name)
			if sug := suggest(name, cands); sug != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", sug)
			} else {
				msg += " (write \"stop\", or add the section under rollback: or repair:)"
			}
			z.probs.add(pos, "%s", msg)
		case after && isRollback:
			z.probs.add(pos, "step %q comes after the point of no return (%q): it cannot roll back; name a repair section or \"stop\"", s.Name, p.PointOfNoReturn)
		case !after && isRepair:
			z.probs.add(pos, "step %q comes before the point of no return: a failure there rolls back; name a rollback section, not repair section %q", s.Name, name)
		}
	}
	if p.Defaults.OnFailure != "" && p.Defaults.OnFailure != "stop" {
		if _, ok := p.Rollback[p.Defaults.OnFailure]; !ok {
			z.probs.add(rb.Defaults.OnFailure.Pos, "defaults.on_failure: no rollback section %q", p.Defaults.OnFailure)
		}
	}
	for i, s := range p.Steps {
		after := ponr >= 0 && i > ponr
		if s.OnFailure == "" && !after {
			s.OnFailure = p.Defaults.OnFailure
		}
		if s.OnFailure == "stop" {
			s.OnFailure = ""
		}
		target(s, after, s.OnFailure, rb.Steps[i].Pos)
	}
	sections := [][]*rawStep{rb.Finally}
	for _, s := range rb.Rollback {
		sections = append(sections, s.Steps)
	}
	for _, s := range rb.Repair {
		sections = append(sections, s.Steps)
	}
	for _, raws := range sections {
		for _, rs := range raws {
			if rs.PointOfNoReturn.Set {
				z.probs.add(rs.PointOfNoReturn.Pos, "step %q: point_of_no_return belongs on a step under steps:, not in a rollback, repair or finally section", rs.Name)
			}
			if rs.OnFailure != nil {
				z.probs.add(rs.OnFailure.Pos, "step %q: on_failure belongs on a step under steps:; a failing step in a rollback, repair or finally section stops that section", rs.Name)
			}
			if rs.Destructive.Set && rs.Destructive.Value {
				z.probs.add(rs.Destructive.Pos, "step %q: steps in rollback, repair and finally sections run without asking, to restore service; destructive applies only under steps:", rs.Name)
			}
		}
	}
}

func (z *resolver) step(rs *rawStep, sec Section, d Defaults) *Step {
	s := &Step{
		Name: rs.Name, Description: rs.Description, Pos: rs.Pos, Section: sec,
		Destructive: rs.Destructive.Value, Idempotent: rs.Idempotent.Value,
		PointOfNoReturn: rs.PointOfNoReturn.Value,
	}
	what := fmt.Sprintf("step %q", rs.Name)
	s.Timeout = z.duration(rs.Timeout, what+": timeout", d.Timeout)
	if rs.OnFailure != nil {
		s.OnFailure = z.sub(*rs.OnFailure, what+": on_failure")
	}
	for _, c := range rs.Requires {
		if cond := z.cond(c, what+": requires", d); cond != nil {
			s.Requires = append(s.Requires, cond)
		}
	}
	for _, c := range rs.Ensures {
		if cond := z.cond(c, what+": ensures", d); cond != nil {
			s.Ensures = append(s.Ensures, cond)
		}
	}
	if rs.Action == nil {
		if len(rs.Requires) == 0 && len(rs.Ensures) == 0 && rs.Name != "" {
			z.probs.add(rs.Pos, "%s: no action, requires or ensures; a step must do or check something", what)
		}
		if rs.Destructive.Value {
			z.probs.add(rs.Destructive.Pos, "%s: destructive, but the step has no action", what)
		}
		return s
	}
	a := rs.Action
	def, ok := steps.Lookup(a.Kind)
	if !ok {
		z.unknownKind(a, what+": action", "action", steps.Names(), checks.Names())
		return s
	}
	vals, ok := z.args(def.Params, a, what+": action "+a.Kind)
	if !ok {
		return s
	}
	st, err := def.New(vals)
	if err != nil {
		z.probs.add(a.Pos, "%s: action %s: %v", what, a.Kind, err)
		return s
	}
	s.Action, s.ActionKind, s.ActionArgs = st, a.Kind, vals.Map()
	_, s.Manual = st.(steps.Manual)
	if def.Destructive {
		if rs.Destructive.Set && !rs.Destructive.Value {
			z.probs.add(rs.Destructive.Pos, "%s: action %s is always destructive; remove `destructive: false`", what, a.Kind)
		}
		if sec == SectionSteps {
			s.Destructive = true
		}
	}
	return s
}

func (z *resolver) unknownKind(c *rawCall, what, noun string, names, other []string) {
	msg := fmt.Sprintf("%s: unknown %s %q", what, noun, c.Kind)
	if s := suggest(c.Kind, names); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	} else if contains(other, c.Kind) {
		if noun == "check" {
			msg += " (that is an action; checks go under requires or ensures, actions under action)"
		} else {
			msg += " (that is a check; put it under requires or ensures)"
		}
	} else {
		list := "switchover steps"
		if noun == "check" {
			list = "switchover checks"
		}
		msg += fmt.Sprintf(" (`%s` lists them)", list)
	}
	z.probs.add(c.Pos, "%s", msg)
}

func (z *resolver) cond(c *rawCall, what string, d Defaults) *Cond {
	def, ok := checks.Lookup(c.Kind)
	if !ok {
		z.unknownKind(c, what, "check", checks.Names(), steps.Names())
		return nil
	}
	vals, ok := z.args(def.Params, c, what+": "+c.Kind)
	if !ok {
		return nil
	}
	chk, err := def.New(vals)
	if err != nil {
		z.probs.add(c.Pos, "%s: %s: %v", what, c.Kind, err)
		return nil
	}
	cond := &Cond{Kind: c.Kind, Args: vals.Map(), Check: chk, Pos: c.Pos}
	cond.Within = z.duration(c.Within, what+": "+c.Kind+": within", 0)
	cond.Every = z.duration(c.Every, what+": "+c.Kind+": every", d.PollInterval)
	cond.Timeout = z.duration(c.Timeout, what+": "+c.Kind+": timeout", d.CheckTimeout)
	if cond.Within > 0 {
		cond.Args["within"] = cond.Within.String()
	}
	return cond
}

// args substitutes variables in a call's parameters and decodes them
// against the schema, reporting each problem at its parameter.
func (z *resolver) args(specs []params.Spec, c *rawCall, what string) (params.Values, bool) {
	raw := map[string]params.Raw{}
	pos := map[string]Pos{}
	for _, a := range c.Args {
		pos[a.Name] = a.Pos
		if a.IsList {
			r := params.Raw{IsList: true}
			for _, e := range a.List {
				r.List = append(r.List, z.sub(e, what+": "+a.Name))
			}
			raw[a.Name] = r
			continue
		}
		raw[a.Name] = params.Raw{Scalar: z.sub(a.Scalar, what+": "+a.Name)}
	}
	vals, probs := params.Decode(specs, raw)
	for _, p := range probs {
		at := c.Pos
		if ap, ok := pos[p.Param]; ok {
			at = ap
		}
		z.probs.add(at, "%s: %s", what, p.Msg)
	}
	for _, s := range specs {
		if s.Type != params.Node || vals.String(s.Name) == "" {
			continue
		}
		node := vals.String(s.Name)
		at := pos[s.Name]
		switch {
		case z.inv == nil:
			z.probs.add(at, "%s: %s: node %q, but no inventory was given (-i FILE)", what, s.Name, node)
			return vals, false
		case z.inv.Cluster.Nodes[node] == nil:
			z.probs.add(at, "%s: %s: node %q is not in inventory %s (nodes: %s)", what, s.Name, node, z.inv.File, strings.Join(z.inv.order, ", "))
			return vals, false
		}
	}
	return vals, len(probs) == 0
}
