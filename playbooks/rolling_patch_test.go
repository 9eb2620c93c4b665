package playbooks_test

import (
	"reflect"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/switchover/switchover/playbooks"
)

// rollingOnly names the steps postgres-rolling-patch adds to the streaming
// switchover; every other step of it is one of the streaming playbook's.
var rollingOnly = []string{"patch-standbys", "patch-old-primary"}

// TestRollingPatchKeepsTheStreamingSwitchover: the switchover inside the
// monthly patch is the streaming playbook's, step for step (the loader has
// no include), so the two cannot drift apart: the same steps in the same
// order with the same checks, actions and flags, the same rollback and
// finally sections, and every variable with the same default.
func TestRollingPatchKeepsTheStreamingSwitchover(t *testing.T) {
	t.Parallel()
	type book struct {
		Vars     map[string]any              `yaml:"vars"`
		Defaults map[string]any              `yaml:"defaults"`
		Steps    []map[string]any            `yaml:"steps"`
		Rollback map[string][]map[string]any `yaml:"rollback"`
		Finally  []map[string]any            `yaml:"finally"`
	}
	read := func(name string) book {
		t.Helper()
		src, ok := playbooks.Read(name)
		if !ok {
			t.Fatalf("no playbook %s", name)
		}
		var b book
		if err := yaml.Unmarshal(src, &b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return b
	}
	streaming, rolling := read("postgres-streaming-switchover"), read("postgres-rolling-patch")

	var kept []map[string]any
	for _, s := range rolling.Steps {
		if !slices.Contains(rollingOnly, s["name"].(string)) {
			kept = append(kept, s)
		}
	}
	if len(kept) != len(streaming.Steps) {
		t.Errorf("postgres-rolling-patch has %d of the switchover's steps, the streaming playbook %d", len(kept), len(streaming.Steps))
	}
	for i := range min(len(kept), len(streaming.Steps)) {
		if !reflect.DeepEqual(kept[i], streaming.Steps[i]) {
			t.Errorf("step %d differs:\n  rolling patch: %v\n  streaming:     %v", i+1, kept[i], streaming.Steps[i])
		}
	}
	for _, sec := range []struct {
		name      string
		got, want any
	}{
		{"rollback", rolling.Rollback, streaming.Rollback},
		{"finally", rolling.Finally, streaming.Finally},
		{"defaults", rolling.Defaults, streaming.Defaults},
	} {
		if !reflect.DeepEqual(sec.got, sec.want) {
			t.Errorf("%s differs:\n  rolling patch: %v\n  streaming:     %v", sec.name, sec.got, sec.want)
		}
	}
	for k, v := range streaming.Vars {
		if got, ok := rolling.Vars[k]; !ok || !reflect.DeepEqual(got, v) {
			t.Errorf("variable %s: rolling patch has %v (%v), streaming %v", k, got, ok, v)
		}
	}

	// The standbys are patched before the switchover's first change, the
	// old primary after the switchover is verified.
	names := make([]string, len(rolling.Steps))
	for i, s := range rolling.Steps {
		names[i] = s["name"].(string)
	}
	if p, s := slices.Index(names, "patch-standbys"), slices.Index(names, "sync-on-candidate"); p < 0 || p != s-1 {
		t.Errorf("patch-standbys at %d, want just before sync-on-candidate (%d): %v", p, s, names)
	}
	if p := slices.Index(names, "patch-old-primary"); p != len(names)-1 || names[p-1] != "verify" {
		t.Errorf("patch-old-primary at %d, want last, after verify: %v", p, names)
	}
}
