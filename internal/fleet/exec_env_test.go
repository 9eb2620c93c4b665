package fleet

import (
	"slices"
	"strings"
	"testing"
)

// A cluster's variables go to its runs in the environment, never on their
// command lines, where anyone on the host could read a secret among them.
func TestVariablesOffTheCommandLine(t *testing.T) {
	t.Parallel()
	r := &ExecRunner{Binary: "switchover", Candidate: "auto", JournalDir: "j"}
	c := &Cluster{Name: "c1", Inventory: "c1.yaml", Vars: map[string]string{"secret_token": "s3cr3t", "pause_max_hold": "20s"}}
	for _, a := range r.runArgs(c) {
		if strings.Contains(a, "s3cr3t") || a == "--var" {
			t.Fatalf("a run's command line %q carries the variables", r.runArgs(c))
		}
	}
	env := r.env(c)
	if !slices.Contains(env, VarsEnv+"=pause_max_hold=20s\nsecret_token=s3cr3t") {
		t.Errorf("the environment does not carry the cluster's variables: %q", env[len(env)-1])
	}
	if env := r.env(&Cluster{Name: "c2"}); strings.HasPrefix(env[len(env)-1], VarsEnv+"=") {
		t.Errorf("a cluster without variables gives %s", env[len(env)-1])
	}
}
