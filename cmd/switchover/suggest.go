package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/runbook/spec"
)

// flagError turns pflag's parse error into a usage error that suggests the
// flag a typo most likely meant: "unknown flag: --candiate; did you mean
// --candidate?".
func flagError(c *cobra.Command, err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "unknown flag: --"); ok {
		if sug := params.Suggest(name, flagNames(c)); sug != "" {
			msg += fmt.Sprintf("; did you mean --%s?", sug)
		}
	}
	return &usageError{err: fmt.Errorf("%s (see '%s --help')", msg, c.CommandPath())}
}

// flagNames lists the long names of every flag c takes, its own and
// inherited.
func flagNames(c *cobra.Command) []string {
	var names []string
	add := func(f *pflag.Flag) {
		if !f.Hidden {
			names = append(names, f.Name)
		}
	}
	c.Flags().VisitAll(add)
	c.InheritedFlags().VisitAll(add)
	return names
}

// noInventoryFirst puts "no inventory given" before the problems a runbook
// has without one (variables with no value, nodes unknown): they follow
// from the missing -i, and the person should read that first.
func noInventoryFirst(err error, inventory string) error {
	var v *spec.ValidationError
	if inventory != "" || !errors.As(err, &v) {
		return err
	}
	first := spec.Problem{Msg: "no inventory given: pass -i FILE, the cluster the runbook acts on (its vars usually set primary and candidate); the problems below may all follow from that"}
	return &spec.ValidationError{Problems: append([]spec.Problem{first}, v.Problems...)}
}
