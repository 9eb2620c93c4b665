package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/switchover/switchover/playbooks"
	"github.com/switchover/switchover/runbook"
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
		if st.Size() > runbook.MaxFileSize {
			return "", nil, &runbook.ValidationError{Problems: []runbook.Problem{{Pos: runbook.Pos{File: name},
				Msg: fmt.Sprintf("file is %d bytes; the limit is %d (is this the right file?)", st.Size(), runbook.MaxFileSize)}}}
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

// loadPlan reads, validates and resolves. Problems in the runbook and the
// inventory are reported together.
func loadPlan(in planInput) (*runbook.Plan, error) {
	label, src, err := readRunbook(in.file)
	if err != nil {
		return nil, err
	}
	var all []runbook.Problem
	collect := func(err error) error {
		var v *runbook.ValidationError
		if errors.As(err, &v) {
			all = append(all, v.Problems...)
			return nil
		}
		return err
	}
	rb, err := runbook.LoadRunbook(label, src)
	if err := collect(err); err != nil {
		return nil, err
	}
	var inv *runbook.Inventory
	if in.inventory != "" {
		b, err := os.ReadFile(in.inventory)
		if err != nil {
			return nil, usagef("inventory %s: %v", in.inventory, err)
		}
		inv, err = runbook.LoadInventory(in.inventory, b)
		if err := collect(err); err != nil {
			return nil, err
		}
	}
	vars, err := runbook.ParseVarFlags(in.vars)
	if err := collect(err); err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return runbook.Resolve(rb, inv, vars)
	}
	// The file's shape has problems; resolve what did load anyway, so that
	// one validation lists every problem: an unknown key and an undefined
	// variable alike.
	if rb != nil && (in.inventory == "" || inv != nil) {
		if _, err := runbook.Resolve(rb, inv, vars); err != nil {
			if err := collect(err); err != nil {
				return nil, err
			}
		}
	}
	return nil, runbook.NewValidationError(all)
}

// recordAbsolutePaths makes the runbook and inventory paths a run records
// in its journal absolute, so that resume finds them from any working
// directory (the operator who lost the session comes back in $HOME).
func recordAbsolutePaths(p *runbook.Plan) {
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
