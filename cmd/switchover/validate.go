package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/switchover/switchover/runbook/spec"
)

type validateOpts struct {
	planInput
	logFormat string
}

func newValidateCmd(io *streams) *cobra.Command {
	opts := &validateOpts{}
	cmd := &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a runbook (and inventory) for every problem, without touching any cluster",
		Long: `Validate reads a runbook, and its inventory when given, and lists every problem with
file:line:col: unknown keys, checks or steps, wrong types, undefined variables, nodes
missing from the inventory. It connects to nothing. FILE may name a shipped playbook.`,
		Args: exactArgs(1, "a runbook FILE"),
		RunE: func(c *cobra.Command, args []string) error {
			opts.file = args[0]
			return runValidate(c.Context(), io, opts)
		},
	}
	opts.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&opts.logFormat, "log-format", "human", "output: human, or json (one event per problem)")
	return cmd
}

func runValidate(_ context.Context, io *streams, opts *validateOpts) error {
	var jv *jsonView
	switch opts.logFormat {
	case "human":
	case "json":
		jv = newJSONView(io.out)
	default:
		return usagef("--log-format %q: want human or json", opts.logFormat)
	}
	l, err := loadInput(opts.planInput)
	var p *spec.Plan
	if err == nil {
		l.validating = true
		p, err = l.plan(nil)
	}
	if err != nil {
		if jv != nil {
			return jv.refused(err)
		}
		return err
	}
	destructive := 0
	for _, s := range p.Steps {
		if s.Destructive {
			destructive++
		}
	}
	if jv != nil {
		jv.valid(p, destructive)
		return nil
	}
	fmt.Fprintf(io.out, "%s: valid: runbook %s, %d step%s (%d destructive), %d rollback and %d repair section%s, %d finally step%s\n",
		p.Runbook.File, p.Runbook.Name, len(p.Steps), plural(len(p.Steps)), destructive,
		len(p.Rollback), len(p.Repair), plural(len(p.Repair)), len(p.Finally), plural(len(p.Finally)))
	return nil
}
