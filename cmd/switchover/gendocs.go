package main

import (
	"fmt"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
	"github.com/spf13/pflag"

	"github.com/switchover/switchover/runbook/journal"
)

// machineDefaults maps the flag defaults that depend on the machine and
// user that run the program to the rule a man page shows instead of the
// build machine's value.
func machineDefaults() map[string]string {
	return map[string]string{
		journal.DefaultJournalDir(): "$XDG_STATE_HOME/switchover, else ~/.local/state/switchover",
		defaultSandboxDir():         "$TMPDIR/switchover-sandbox, else /tmp/switchover-sandbox",
	}
}

// newGenManCmd writes a man page (section 1) for every command, for the
// Debian package (make package) and for those who install with go install
// (docs/install.md). It is hidden from help and completion: it is not part
// of a switchover. The pages' date is SOURCE_DATE_EPOCH when set, so that
// the same commit gives the same pages.
func newGenManCmd(io *streams) *cobra.Command {
	return &cobra.Command{
		Use:    "gen-man DIR",
		Short:  "Write a man page for every command into DIR",
		Hidden: true,
		Args:   exactArgs(1, "the directory to write the pages into"),
		RunE: func(c *cobra.Command, args []string) error {
			bi, _ := debug.ReadBuildInfo()
			return runGenMan(c.Root(), args[0], versionOf(version, bi))
		},
	}
}

// runGenMan writes the pages of root's command tree into dir, which it
// creates when missing.
func runGenMan(root *cobra.Command, dir, version string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("gen-man: %w", err)
	}
	rules := machineDefaults()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		// No "Auto generated" line with today's date: the same commit
		// gives the same pages.
		c.DisableAutoGenTag = true
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if rule, ok := rules[f.DefValue]; ok {
				f.DefValue = rule
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	header := &doc.GenManHeader{
		// Title is left to cobra: each page's own name in capitals
		// (SWITCHOVER, SWITCHOVER-RUN, ...), as man(7) wants it.
		Section: "1",
		Source:  "switchover " + version,
		Manual:  "switchover manual",
	}
	if err := doc.GenManTree(root, header, dir); err != nil {
		return fmt.Errorf("gen-man %s: %w", dir, err)
	}
	return nil
}
