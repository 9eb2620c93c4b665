package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/switchover/switchover/playbooks"
	"github.com/switchover/switchover/runbook/spec"
)

func newPlaybooksCmd(io *streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "playbooks",
		Short: "List the runbooks shipped in the binary, or show one",
		Args:  exactArgs(0, "no arguments (or the subcommand show NAME)"),
		RunE: func(c *cobra.Command, _ []string) error {
			tw := tabwriter.NewWriter(io.out, 0, 0, 2, ' ', 0)
			for _, n := range playbooks.Names() {
				src, _ := playbooks.Read(n)
				desc := ""
				if rb, err := spec.LoadRunbook("playbook:"+n, src); err == nil {
					desc = rb.Description
				}
				fmt.Fprintf(tw, "%s\t%s\n", n, desc)
			}
			return tw.Flush()
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "show NAME",
		Short: "Print a shipped playbook, to read it or adapt it",
		Args:  exactArgs(1, "a playbook NAME"),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return playbooks.Names(), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			src, ok := playbooks.Read(args[0])
			if !ok {
				return usagef("no shipped playbook %q (see 'switchover playbooks')", args[0])
			}
			_, err := io.out.Write(src)
			return err
		},
	})
	return cmd
}
