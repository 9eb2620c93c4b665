package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/switchover/switchover/internal/fleet"
	"github.com/switchover/switchover/playbooks"
	"github.com/switchover/switchover/runbook/spec"
)

// planInput is what a plan is built from: a runbook, an inventory, --var.
type planInput struct {
	file      string
	inventory string
	vars      []string
}

func (in *planInput) addFlags(fs *pflag.FlagSet) {
	fs.StringVarP(&in.inventory, "inventory", "i", "", "inventory `FILE`: the cluster the runbook acts on")
	fs.StringArrayVar(&in.vars, "var", nil, "set a runbook variable, `NAME=VALUE` (repeatable)")
}

// envVars are the variables given in the environment (fleet.VarsEnv: one
// NAME=VALUE a line), as if given with --var before the flags: so that a
// value, a secret say, need not be on a command line, where anyone on the
// host can read it. A fleet gives each cluster's variables to its runs
// this way.
func envVars() []string {
	var out []string
	for _, l := range strings.Split(os.Getenv(fleet.VarsEnv), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// readRunbook reads FILE, or the shipped playbook of that name.
func readRunbook(name string) (label string, src []byte, err error) {
	if pb, ok := strings.CutPrefix(name, "playbook:"); ok {
		if b, ok := playbooks.Read(pb); ok {
			return name, b, nil
		}
		return "", nil, usagef("no shipped playbook %q (shipped: %s)", pb, strings.Join(playbooks.Names(), ", "))
	}
	st, err := os.Stat(name)
	if err == nil {
		if st.IsDir() {
			return "", nil, usagef("runbook %s: is a directory", name)
		}
		if st.Size() > spec.MaxFileSize {
			return "", nil, &spec.ValidationError{Problems: []spec.Problem{{Pos: spec.Pos{File: name},
				Msg: fmt.Sprintf("file is %d bytes; the limit is %d (is this the right file?)", st.Size(), spec.MaxFileSize)}}}
		}
		b, err := os.ReadFile(name)
		if err != nil {
			return "", nil, usagef("runbook %s: %v", name, err)
		}
		return name, b, nil
	}
	if b, ok := playbooks.Read(name); ok {
		return "playbook:" + strings.TrimSuffix(name, ".yaml"), b, nil
	}
	if errors.Is(err, os.ErrNotExist) {
		return "", nil, usagef("runbook %s: no such file, and no shipped playbook by that name (shipped: %s)", name, strings.Join(playbooks.Names(), ", "))
	}
	return "", nil, usagef("runbook %s: %v", name, err)
}

// loaded is a run's input, each file read once: the runbook, the
// inventory and the --var flags, with the problems found in any of them,
// reported together when the plan is resolved.
type loaded struct {
	in       planInput
	rb       *spec.Runbook   // nil when it did not load
	inv      *spec.Inventory // nil when not given or it did not load
	vars     []spec.VarDecl
	problems []spec.Problem
	// primary is the primary found in the cluster (settlePrimary), nil
	// when the runbook's variables give it or nobody asked the cluster.
	primary *spec.VarDecl
	// validating takes a stand-in for a primary to be found in the
	// cluster: validate connects to nothing. (So does a plan whose files
	// have problems, reported without a misleading one about the primary.)
	validating bool
}

// loadInput reads the runbook, the inventory and the --var flags. An
// error is one that stops before validation (a file that cannot be
// read); problems of the files' contents are kept in loaded.
func loadInput(in planInput) (*loaded, error) {
	l := &loaded{in: in}
	label, src, err := readRunbook(in.file)
	if err != nil {
		return nil, err
	}
	l.rb, err = spec.LoadRunbook(label, src)
	if err := l.collect(err); err != nil {
		return nil, err
	}
	if in.inventory != "" {
		b, err := os.ReadFile(in.inventory)
		if err != nil {
			return nil, usagef("inventory %s: %v", in.inventory, err)
		}
		l.inv, err = spec.LoadInventory(in.inventory, b)
		if err := l.collect(err); err != nil {
			return nil, err
		}
	}
	l.vars, err = spec.ParseVarFlags(in.vars)
	if err := l.collect(err); err != nil {
		return nil, err
	}
	return l, nil
}

// collect keeps a validation error's problems and returns any other error.
func (l *loaded) collect(err error) error {
	var v *spec.ValidationError
	if errors.As(err, &v) {
		l.problems = append(l.problems, v.Problems...)
		return nil
	}
	return err
}

// plan validates and resolves, with the candidate (nil for none) as the
// variable candidate. Problems in the runbook and the inventory are
// reported together.
func (l *loaded) plan(c *candidate) (*spec.Plan, error) {
	vars := l.vars
	if c != nil {
		vars = append(slices.Clip(vars), spec.VarDecl{Name: "candidate", Value: c.Node, HasValue: true, Pos: spec.Pos{File: "--candidate"}})
	}
	primary := l.primary
	if primary == nil && (l.validating || len(l.problems) > 0) {
		primary = l.primaryStandIn()
	}
	if primary != nil {
		vars = append(slices.Clip(vars), *primary)
	}
	if len(l.problems) == 0 {
		p, err := spec.Resolve(l.rb, l.inv, vars)
		if err == nil && l.primary != nil {
			markFound(p, l.primary.Name)
		}
		return p, err
	}
	// The file's shape has problems; resolve what did load anyway, so that
	// one validation lists every problem: an unknown key and an undefined
	// variable alike.
	all := slices.Clip(l.problems)
	if l.rb != nil && (l.in.inventory == "" || l.inv != nil) {
		if _, err := spec.Resolve(l.rb, l.inv, vars); err != nil {
			var v *spec.ValidationError
			if !errors.As(err, &v) {
				return nil, err
			}
			all = append(all, v.Problems...)
		}
	}
	return nil, spec.NewValidationError(all)
}

// markFound records variable name as found in the cluster, not
// given with --var.
func markFound(p *spec.Plan, name string) {
	p.VarFlags = slices.DeleteFunc(p.VarFlags, func(v string) bool { return v == name })
	p.Found = append(p.Found, name)
}

// loadPlan reads, validates and resolves.
func loadPlan(in planInput) (*spec.Plan, error) {
	l, err := loadInput(in)
	if err != nil {
		return nil, err
	}
	return l.plan(nil)
}

// recordAbsolutePaths makes the runbook and inventory paths a run records
// in its journal absolute, so that resume finds them from any working
// directory (the operator who lost the session comes back in $HOME).
func recordAbsolutePaths(p *spec.Plan) {
	abs := func(name string) string {
		if a, err := filepath.Abs(name); err == nil {
			return a
		}
		return name
	}
	if p.Runbook != nil && !strings.HasPrefix(p.Runbook.File, "playbook:") {
		p.Runbook.File = abs(p.Runbook.File)
	}
	if p.Inventory != nil {
		p.Inventory.File = abs(p.Inventory.File)
	}
}
