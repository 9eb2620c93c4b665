package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/switchover/switchover/playbooks"
	"github.com/switchover/switchover/runbook/spec"
)

// Shell completion (cobra's `completion` command) completes names where a
// name is expected, never files: shipped playbooks and runbook files for
// run, plan and validate; the inventory's nodes for --candidate; the
// runbook's steps that take an approval for --approve; the values of every
// flag that takes one of a few words.

// flagValues are the words an enum flag accepts, with what each means.
var flagValues = map[string][]string{
	"log-format": {"human\tone block per step, for a person", "json\tone event per line, for scripts"},
	"settle":     {"rerun\trun the step cut off again", "done\tthe step's action finished: count it done"},
	"format":     {"markdown\tfor a change ticket", "json\tthe report as data", "html\tone page with the window's picture"},
	"manager":    {"none\tplain streaming replication", "patroni\tone Patroni per node, etcd"},
}

// fileFlags take a path: the shell's own file completion is right there.
var fileFlags = map[string]cobra.ShellCompDirective{
	"inventory":   cobra.ShellCompDirectiveDefault,
	"plan":        cobra.ShellCompDirectiveDefault,
	"out":         cobra.ShellCompDirectiveDefault,
	"journal-dir": cobra.ShellCompDirectiveFilterDirs,
	"dir":         cobra.ShellCompDirectiveFilterDirs,
	"pg-bin":      cobra.ShellCompDirectiveFilterDirs,
	"ssh-config":  cobra.ShellCompDirectiveDefault,
}

// runbookCommands take a runbook (a file or a shipped playbook) first.
var runbookCommands = map[string]bool{"run": true, "plan": true, "validate": true}

// registerCompletions adds completion to every command under root: its
// first argument where it is a runbook, and every flag that takes a value.
func registerCompletions(root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if runbookCommands[c.Name()] && c.Parent() == root && c.ValidArgsFunction == nil {
			c.ValidArgsFunction = completeRunbook
		}
		register := func(f *pflag.Flag) {
			if f.Value.Type() == "bool" {
				return
			}
			if _, ok := c.GetFlagCompletionFunc(f.Name); ok {
				return
			}
			_ = c.RegisterFlagCompletionFunc(f.Name, flagCompletion(f.Name))
		}
		c.Flags().VisitAll(register)
		c.PersistentFlags().VisitAll(register)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// flagCompletion is the completion of one flag's value.
func flagCompletion(name string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(c *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if vals, ok := flagValues[name]; ok {
			return vals, cobra.ShellCompDirectiveNoFileComp
		}
		if d, ok := fileFlags[name]; ok {
			return nil, d
		}
		switch name {
		case "candidate":
			return append(inventoryNodes(c), "auto\tthe most caught-up healthy standby"), cobra.ShellCompDirectiveNoFileComp
		case "approve":
			if len(args) == 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			if rb := completionRunbook(args[0]); rb != nil {
				return rb.ApprovableSteps(), cobra.ShellCompDirectiveNoFileComp
			}
		case "var":
			if len(args) > 0 && !strings.Contains(toComplete, "=") {
				if rb := completionRunbook(args[0]); rb != nil {
					var names []string
					for _, v := range rb.Vars {
						names = append(names, v.Name+"=")
					}
					return names, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
				}
			}
		}
		// A name, a time, a number: never a file.
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeRunbook completes a runbook argument: the shipped playbooks,
// then runbook files (.yaml, .yml) and directories beside what is typed.
func completeRunbook(_ *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, n := range playbooks.Names() {
		if strings.HasPrefix(n, toComplete) {
			out = append(out, n+"\tshipped playbook")
		}
	}
	dir, typed := filepath.Split(toComplete)
	read := dir
	if read == "" {
		read = "."
	}
	entries, _ := os.ReadDir(read)
	dirs := false
	for _, e := range entries {
		name := dir + e.Name()
		hidden := strings.HasPrefix(e.Name(), ".") && !strings.HasPrefix(typed, ".")
		if hidden || !strings.HasPrefix(e.Name(), typed) {
			continue
		}
		switch {
		case e.IsDir():
			out = append(out, name+"/")
			dirs = true
		case strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml"):
			out = append(out, name)
		}
	}
	d := cobra.ShellCompDirectiveNoFileComp
	if dirs {
		d |= cobra.ShellCompDirectiveNoSpace // a directory is completed further
	}
	return out, d
}

// inventoryNodes are the nodes of the inventory given with -i, if any.
func inventoryNodes(c *cobra.Command) []string {
	path, _ := c.Flags().GetString("inventory")
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	inv, err := spec.LoadInventory(path, b)
	if err != nil || inv == nil {
		return nil
	}
	return slices.Clone(inv.NodeOrder())
}

// completionRunbook loads the runbook a command names, or nil.
func completionRunbook(name string) *spec.Runbook {
	label, src, err := readRunbook(name)
	if err != nil {
		return nil
	}
	rb, err := spec.LoadRunbook(label, src)
	if err != nil {
		return nil
	}
	return rb
}
