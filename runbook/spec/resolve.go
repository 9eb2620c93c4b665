package spec

import (
	"fmt"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/kinds"
	"github.com/switchover/switchover/internal/params"
)

// suggest is the typo suggester every message shares.
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
	vars     map[string]string
	broken   map[string]bool // declared, but without a value for a reason already reported
	inv      *Inventory
	probs    problems
	used     map[string]bool
	size     int  // bytes of substituted values so far
	tooLarge bool // the size is over maxPlanSize, and that was reported
}

// maxPlanSize bounds the substituted values of a whole plan.
const maxPlanSize = 16 * MaxFileSize

// sub substitutes variables in s. It reports what is undefined and returns
// false when the value is not complete.
func (z *resolver) sub(s rawScalar, what string) (string, bool) {
	for _, r := range refs(s.Value) {
		z.used[r] = true
	}
	ok := true
	for _, msg := range badRefs(s.Value) {
		ok = false
		z.probs.add(s.Pos, "%s: %s", what, msg)
	}
	out, missing, err := expand(s.Value, z.vars)
	if err != nil {
		z.probs.add(s.Pos, "%s: %v", what, err)
		return "", false
	}
	// Each value is bounded; so is their sum, or a large variable used in
	// many places would exhaust memory all the same.
	if z.size += len(out); z.size > maxPlanSize {
		if !z.tooLarge {
			z.tooLarge = true
			z.probs.add(s.Pos, "%s: the values of the runbook add up to more than %d bytes after substitution", what, maxPlanSize)
		}
		return "", false
	}
	for _, m := range missing {
		ok = false
		if z.broken[m] {
			continue // its declaration says why
		}
		hint := suggestVar(m, z.vars)
		if hint == "" && strings.ToUpper(m) == m {
			hint = fmt.Sprintf(" (for the shell's $%s, write $${%s})", m, m)
		}
		z.probs.add(s.Pos, "%s: undefined variable %q%s", what, m, hint)
	}
	return out, ok
}

func (z *resolver) duration(s *rawScalar, what string, def time.Duration) time.Duration {
	if s == nil {
		return def
	}
	v, ok := z.sub(*s, what)
	if !ok {
		return def
	}
	v = strings.TrimSpace(v)
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
	z.vars, z.broken = resolveVars(layers, &z.probs)

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
		if v, ok := z.sub(*rb.Defaults.OnFailure, "defaults.on_failure"); ok {
			p.Defaults.OnFailure = v
		}
	}

	names := map[string]Pos{}
	build := func(raws []*rawStep, sec Section) []*Step {
		out := make([]*Step, 0, len(raws))
		for _, rs := range raws {
			if prev, dup := names[rs.Name]; dup && rs.Name != "" {
				z.probs.add(rs.NamePos, "step %q: the name is already used by the step at line %d; step names must be unique across all sections", rs.Name, prev.Line)
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

func hasParam(specs []params.Spec, name string) bool {
	for _, s := range specs {
		if s.Name == name {
			return true
		}
	}
	return false
}

func specNames(specs []params.Spec) []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = s.Name
	}
	return out
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
	z.checkApproveWith(rb, p)
	ponr := -1
	for i, s := range p.Steps {
		if !s.PointOfNoReturn {
			continue
		}
		if ponr >= 0 {
			z.probs.add(rb.Steps[i].PointOfNoReturn.Pos, "step %q: point_of_no_return is already set on step %q (line %d); a runbook has at most one",
				s.Name, p.Steps[ponr].Name, p.Steps[ponr].Pos.Line)
			continue
		}
		ponr = i
		p.PointOfNoReturn = s.Name
	}
	sectionNames := append(keys(p.Rollback), keys(p.Repair)...)
	unknown := func(what, name string) string {
		msg := fmt.Sprintf("%s: no rollback or repair section %q", what, name)
		if sug := suggest(name, sectionNames); sug != "" {
			return msg + fmt.Sprintf(" (did you mean %q?)", sug)
		}
		if len(sectionNames) == 0 {
			return msg + " (the runbook has none: add it under rollback: or repair:, or write \"stop\")"
		}
		return msg + fmt.Sprintf(" (sections: %s; or write \"stop\")", strings.Join(sorted(sectionNames), ", "))
	}
	defaultOK := true
	if def := p.Defaults.OnFailure; def != "" && def != "stop" {
		at := rb.Defaults.OnFailure.Pos
		_, isRollback := p.Rollback[def]
		_, isRepair := p.Repair[def]
		switch {
		case isRepair && !isRollback:
			z.probs.add(at, "defaults.on_failure: %q is a repair section; the default applies to steps before the point of no return, which roll back: name a rollback section", def)
			defaultOK = false
		case !isRollback:
			z.probs.add(at, "%s", unknown("defaults.on_failure", def))
			defaultOK = false
		}
	}
	for i, s := range p.Steps {
		after := ponr >= 0 && i > ponr
		raw := rb.Steps[i]
		fromDefault := false
		if s.OnFailure == "" && raw.OnFailure == nil && !after {
			s.OnFailure, fromDefault = p.Defaults.OnFailure, true
		}
		if s.OnFailure == "stop" {
			s.OnFailure = ""
		}
		name := s.OnFailure
		if name == "" || fromDefault {
			if fromDefault && !defaultOK {
				s.OnFailure = "" // reported once, at defaults.on_failure
			}
			continue
		}
		at := raw.Pos
		if raw.OnFailure != nil {
			at = raw.OnFailure.Pos
		}
		what := fmt.Sprintf("step %q: on_failure", s.Name)
		_, isRollback := p.Rollback[name]
		_, isRepair := p.Repair[name]
		switch {
		case !isRollback && !isRepair:
			z.probs.add(at, "%s", unknown(what, name))
		case after && !isRepair:
			z.probs.add(at, "%s: %q is a rollback section, but the step comes after the point of no return (step %q), where the engine never rolls back; name a repair section or \"stop\"", what, name, p.PointOfNoReturn)
		case !after && !isRollback && ponr < 0:
			z.probs.add(at, "%s: %q is a repair section, but the runbook has no point_of_no_return, so every failure rolls back; name a rollback section, or mark the step after which the engine repairs with point_of_no_return: true", what, name)
		case !after && !isRollback:
			z.probs.add(at, "%s: %q is a repair section, but the step comes before the point of no return (step %q), where a failure rolls back; name a rollback section or \"stop\"", what, name, p.PointOfNoReturn)
		}
	}
	type section struct {
		label string
		steps []*rawStep
	}
	sections := []section{{"finally", rb.Finally}}
	for _, s := range rb.Rollback {
		sections = append(sections, section{fmt.Sprintf("rollback section %q", s.Name), s.Steps})
	}
	for _, s := range rb.Repair {
		sections = append(sections, section{fmt.Sprintf("repair section %q", s.Name), s.Steps})
	}
	for _, sec := range sections {
		for _, rs := range sec.steps {
			if rs.PointOfNoReturn.Set {
				z.probs.add(rs.PointOfNoReturn.Pos, "step %q: point_of_no_return is not allowed in %s; it marks a step under steps:", rs.Name, sec.label)
			}
			if rs.OnFailure != nil {
				z.probs.add(rs.OnFailure.Pos, "step %q: on_failure is not allowed in %s; a failing step there stops its section", rs.Name, sec.label)
			}
			if rs.Destructive.Set && rs.Destructive.Value {
				z.probs.add(rs.Destructive.Pos, "step %q: destructive is not allowed in %s; steps in rollback, repair and finally sections run without asking, to restore service", rs.Name, sec.label)
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
		if v, ok := z.sub(*rs.OnFailure, what+": on_failure"); ok {
			s.OnFailure = v
		}
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
		if rs.Broken {
			return s
		}
		if len(rs.Requires) == 0 && len(rs.Ensures) == 0 && rs.Name != "" {
			z.probs.add(rs.Pos, "%s: no action, requires or ensures; a step must do or check something", what)
		}
		if rs.Destructive.Value {
			z.probs.add(rs.Destructive.Pos, "%s: destructive, but the step has no action", what)
		}
		return s
	}
	a := rs.Action
	def, ok := kinds.Steps.Lookup(a.Kind)
	if !ok {
		z.unknownKind(a, what+": action", "action", kinds.Steps.Names(), kinds.Checks.Names())
		return s
	}
	z.needManager(def.Manager, a.Pos, what+": action "+a.Kind)
	var args []*rawArg
	for _, arg := range a.Args {
		if contains(engineArgs, arg.Name) && !hasParam(def.Params, arg.Name) {
			z.probs.add(arg.Pos, "%s: action %s: %s is not an action parameter; an action runs once, under the step's timeout (put `timeout: 2m` on the step)", what, a.Kind, arg.Name)
			continue
		}
		args = append(args, arg)
	}
	stripped := *a
	stripped.Args = args
	vals, ok := z.args(def.Params, &stripped, what+": action "+a.Kind)
	if !ok || len(args) < len(a.Args) {
		return s
	}
	st, err := def.New(vals)
	if err != nil {
		z.probs.add(a.Pos, "%s: action %s: %v", what, a.Kind, err)
		return s
	}
	s.Action, s.ActionKind, s.ActionArgs = st, a.Kind, vals.Map()
	_, s.Manual = st.(kinds.Manual)
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
	// The engine's keys are checked whatever the check's own parameters
	// hold, so that one validation reports both.
	within := z.duration(c.Within, what+": "+c.Kind+": within", 0)
	every := z.duration(c.Every, what+": "+c.Kind+": every", d.PollInterval)
	timeout := z.duration(c.Timeout, what+": "+c.Kind+": timeout", d.CheckTimeout)
	def, ok := kinds.Checks.Lookup(c.Kind)
	if !ok {
		z.unknownKind(c, what, "check", kinds.Checks.Names(), kinds.Steps.Names())
		return nil
	}
	z.needManager(def.Manager, c.Pos, what+": "+c.Kind)
	vals, ok := z.args(def.Params, c, what+": "+c.Kind)
	if !ok {
		return nil
	}
	chk, err := def.New(vals)
	if err != nil {
		z.probs.add(c.Pos, "%s: %s: %v", what, c.Kind, err)
		return nil
	}
	cond := &Cond{Kind: c.Kind, Args: vals.Map(), Check: chk, Pos: c.Pos, Within: within, Every: every, Timeout: timeout}
	if cond.Within > 0 {
		cond.Args["within"] = cond.Within.String()
	}
	return cond
}

// needManager reports a kind that talks to a cluster manager the
// inventory does not have: it could only fail when it runs.
func (z *resolver) needManager(kind cluster.ManagerKind, at Pos, what string) {
	if kind == "" || z.inv == nil {
		return
	}
	switch m := z.inv.Cluster.Manager; {
	case m == nil:
		z.probs.add(at, "%s: needs a %s cluster, but inventory %s has no manager section (manager: {kind: %s, urls: [...]})", what, kind, z.inv.File, kind)
	case m.Kind != kind:
		z.probs.add(at, "%s: needs a %s cluster, but inventory %s's manager is %s", what, kind, z.inv.File, m.Kind)
	}
}

// args substitutes variables in a call's parameters and decodes them
// against the schema, reporting each problem at its parameter.
func (z *resolver) args(specs []params.Spec, c *rawCall, what string) (params.Values, bool) {
	raw := map[string]params.Raw{}
	pos := map[string]Pos{}
	subbed := true // every variable substituted
	for _, a := range c.Args {
		pos[a.Name] = a.Pos
		if a.IsList {
			r := params.Raw{IsList: true}
			for _, e := range a.List {
				v, ok := z.sub(e, what+": "+a.Name)
				subbed = subbed && ok
				r.List = append(r.List, v)
			}
			raw[a.Name] = r
			continue
		}
		v, ok := z.sub(a.Scalar, what+": "+a.Name)
		subbed = subbed && ok
		raw[a.Name] = params.Raw{Scalar: v}
	}
	vals, probs := params.Decode(specs, raw)
	// A misspelt required parameter is reported once, as the typo.
	misspelt := map[string]bool{}
	for name := range raw {
		if !hasParam(specs, name) {
			if s := params.Suggest(name, specNames(specs)); s != "" {
				misspelt[fmt.Sprintf("missing required parameter %q", s)] = true
			}
		}
	}
	for _, p := range probs {
		if p.Param == "" && misspelt[strings.SplitN(p.Msg, " (", 2)[0]] {
			continue
		}
		at := c.Pos
		if ap, ok := pos[p.Param]; ok {
			at = ap
		}
		z.probs.add(at, "%s: %s", what, p.Msg)
	}
	for _, s := range specs {
		var names []string
		switch s.Type {
		case params.Node:
			if n := vals.String(s.Name); n != "" {
				names = []string{n}
			}
		case params.Nodes:
			names = vals.Strings(s.Name)
		}
		if !subbed {
			continue
		}
		at := pos[s.Name]
		for _, node := range names {
			switch {
			case z.inv == nil:
				z.probs.add(at, "%s: %s: node %q, but no inventory was given (-i FILE)", what, s.Name, node)
				return vals, false
			case !z.inv.hasNode(node):
				z.probs.add(at, "%s: %s: node %q is not in inventory %s (%s)", what, s.Name, node, z.inv.File, z.inv.nodeList())
				return vals, false
			}
		}
	}
	return vals, len(probs) == 0 && subbed
}

// checkApproveWith checks that approve_with names later destructive steps
// of the main list.
func (z *resolver) checkApproveWith(rb *Runbook, p *Plan) {
	index := map[string]int{}
	for i, s := range p.Steps {
		index[s.Name] = i
	}
	check := func(raws []*rawStep, main bool) {
		for i, rs := range raws {
			if len(rs.ApproveWith) == 0 {
				continue
			}
			if !main {
				z.probs.add(rs.ApproveWithPos, "step %q: approve_with belongs on a step under steps:", rs.Name)
				continue
			}
			for _, sc := range rs.ApproveWith {
				name, subbed := z.sub(sc, fmt.Sprintf("step %q: approve_with", rs.Name))
				if !subbed {
					continue
				}
				j, ok := index[name]
				switch {
				case !ok:
					z.probs.add(sc.Pos, "step %q: approve_with: no step %q under steps:%s", rs.Name, name, suggestVar(name, index))
				case j <= i:
					z.probs.add(sc.Pos, "step %q: approve_with: step %q does not come after it; approvals are asked ahead, not behind", rs.Name, name)
				case !p.Steps[j].Destructive:
					z.probs.add(sc.Pos, "step %q: approve_with: step %q is not destructive; there is nothing to approve", rs.Name, name)
				default:
					p.Steps[i].ApproveWith = append(p.Steps[i].ApproveWith, name)
				}
			}
		}
	}
	check(rb.Steps, true)
	check(rb.Finally, false)
	for _, sec := range rb.Rollback {
		check(sec.Steps, false)
	}
	for _, sec := range rb.Repair {
		check(sec.Steps, false)
	}
}
