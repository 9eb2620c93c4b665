package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/switchover/switchover/runbook/journal"
)

// The package's man pages: one per command a user can call, named as man
// finds them, each with its name, synopsis and options, and the same bytes
// from the same commit.
func TestGenMan(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1796083200") // 2026-12-01
	dir := t.TempDir()
	if code, _, errOut := executeT(t, "gen-man", dir); code != 0 {
		t.Fatalf("gen-man: exit %d: %s", code, errOut)
	}

	// The commands a user sees, with cobra's completion command, which
	// cobra adds when the program runs.
	root := newRootCmd(&streams{in: strings.NewReader(""), out: &bytes.Buffer{}, err: &bytes.Buffer{}})
	root.InitDefaultCompletionCmd()
	var want []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.HasParent() && (!c.IsAvailableCommand() || c.IsAdditionalHelpTopicCommand()) {
			return
		}
		want = append(want, strings.ReplaceAll(c.CommandPath(), " ", "-")+".1")
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	slices.Sort(want)
	for _, must := range []string{"switchover.1", "switchover-run.1", "switchover-sandbox-up.1", "switchover-completion-bash.1"} {
		if !slices.Contains(want, must) {
			t.Fatalf("the command tree has no %s: %v", must, want)
		}
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pages:\n got %v\nwant %v", got, want)
	}

	for _, name := range got {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		page := string(b)
		title := strings.ToUpper(strings.TrimSuffix(name, ".1"))
		for _, s := range []string{
			`.TH "` + title + `" "1" "Dec 2026" "switchover `, `"switchover manual"`,
			".SH NAME\n" + strings.TrimSuffix(name, ".1") + " - ", ".SH SYNOPSIS\n", ".SH OPTIONS\n",
		} {
			if !strings.Contains(page, s) {
				t.Errorf("%s: no %q in:\n%s", name, s, page)
			}
		}
		// Nothing of the machine that made the page, nor the day it ran.
		for _, s := range []string{"Auto generated", `="` + journal.DefaultJournalDir() + `"`, `="` + defaultSandboxDir() + `"`} {
			if strings.Contains(page, s) {
				t.Errorf("%s: has %q", name, s)
			}
		}
	}
	run, _ := os.ReadFile(filepath.Join(dir, "switchover-run.1"))
	if !strings.Contains(string(run), "~/.local/state/switchover") {
		t.Errorf("switchover-run.1: the journal directory's default is not the rule:\n%s", run)
	}

	again := t.TempDir()
	if code, _, errOut := executeT(t, "gen-man", again); code != 0 {
		t.Fatalf("gen-man again: exit %d: %s", code, errOut)
	}
	for _, name := range got {
		a, _ := os.ReadFile(filepath.Join(dir, name))
		b, _ := os.ReadFile(filepath.Join(again, name))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between two runs", name)
		}
	}
}

// gen-man is for the package's build, not in a user's help or completion.
func TestGenManIsHidden(t *testing.T) {
	_, out, _ := executeT(t, "--help")
	if strings.Contains(out, "gen-man") {
		t.Errorf("--help lists gen-man:\n%s", out)
	}
	_, out, _ = executeT(t, "__complete", "gen")
	if strings.Contains(out, "gen-man") {
		t.Errorf("completion offers gen-man:\n%s", out)
	}
	if code, _, errOut := executeT(t, "gen-man"); code != exitUsage {
		t.Errorf("gen-man without a directory: exit %d, want %d: %s", code, exitUsage, errOut)
	}
}
