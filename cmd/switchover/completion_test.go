package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Completion through cobra's __complete command, the way a shell asks:
// names where names are expected, never the shell's file completion there.
func TestCompletion(t *testing.T) {
	inv, err := filepath.Abs(filepath.Join("..", "..", "runbook", "spec", "testdata", "inventory", "local.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	writeFile(t, filepath.Join(work, "monthly.yaml"), "name: x\n")
	writeFile(t, filepath.Join(work, "notes.txt"), "not a runbook\n")
	if err := os.Mkdir(filepath.Join(work, "runbooks"), 0o755); err != nil {
		t.Fatal(err)
	}
	const (
		noFile  = ":4"  // ShellCompDirectiveNoFileComp
		noSpace = ":6"  // NoFileComp | NoSpace
		dirs    = ":16" // FilterDirs
	)
	tests := []struct {
		name      string
		args      []string
		want      []string
		wantNot   []string
		directive string
	}{
		{"run's runbook: playbooks and yaml files", []string{"run", work + "/"}, []string{work + "/monthly.yaml", work + "/runbooks/"}, []string{"notes.txt"}, noSpace},
		{"plan's runbook: shipped playbooks", []string{"plan", "postgres-"}, []string{"postgres-streaming-switchover\tshipped playbook"}, []string{"patroni-switchover"}, noFile},
		{"validate's runbook", []string{"validate", "patroni-s"}, []string{"patroni-switchover"}, nil, noFile},
		{"no second runbook", []string{"run", "example", ""}, nil, []string{"example"}, noFile},
		{"candidate: the inventory's nodes", []string{"run", "postgres-streaming-switchover", "-i", inv, "--candidate", ""}, []string{"pg1", "pg2", "pg3", "auto\t"}, nil, noFile},
		{"candidate without an inventory", []string{"plan", "postgres-streaming-switchover", "--candidate", ""}, []string{"auto\t"}, []string{"pg1"}, noFile},
		{"approve: the steps that take one", []string{"run", "postgres-streaming-switchover", "--approve", ""}, []string{"stop-primary", "promote"}, []string{"preflight", "start-canary"}, noFile},
		{"log-format", []string{"run", "example", "--log-format", ""}, []string{"human\t", "json\t"}, nil, noFile},
		{"log-format on plan", []string{"plan", "example", "--log-format", ""}, []string{"human\t", "json\t"}, nil, noFile},
		{"settle", []string{"resume", "--settle", ""}, []string{"rerun\t", "done\t"}, nil, noFile},
		{"report format", []string{"report", "--format", ""}, []string{"markdown\t", "json\t", "html\t"}, nil, noFile},
		{"sandbox manager", []string{"sandbox", "up", "--manager", ""}, []string{"none\t", "patroni\t"}, nil, noFile},
		{"var names of the runbook", []string{"run", "postgres-streaming-switchover", "--var", "can"}, []string{"candidate="}, nil, noSpace},
		{"a time is no file", []string{"run", "example", "--not-before", ""}, nil, nil, noFile},
		{"journal-dir: directories", []string{"runs", "--journal-dir", ""}, nil, nil, dirs},
		{"inventory: files", []string{"run", "example", "-i", ""}, nil, nil, ":0"},
		{"playbooks show", []string{"playbooks", "show", ""}, []string{"example"}, nil, noFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := executeT(t, append([]string{"__complete"}, tt.args...)...)
			if code != 0 {
				t.Fatalf("__complete %q: exit %d: %s", tt.args, code, errOut)
			}
			lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
			if got := lines[len(lines)-1]; got != tt.directive {
				t.Errorf("__complete %q: directive %s, want %s; output:\n%s", tt.args, got, tt.directive, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, "\n"+w) && !strings.HasPrefix(out, w) {
					t.Errorf("__complete %q: no %q in:\n%s", tt.args, w, out)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(out, w) {
					t.Errorf("__complete %q: %q offered:\n%s", tt.args, w, out)
				}
			}
		})
	}
}
