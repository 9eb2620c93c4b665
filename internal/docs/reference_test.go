package docs

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	// The registries are filled by the packages that define the kinds.
	_ "github.com/switchover/switchover/checks"
	_ "github.com/switchover/switchover/steps"

	"github.com/switchover/switchover/internal/kinds"
	"github.com/switchover/switchover/internal/params"
)

var update = flag.Bool("update", false, "rewrite the generated reference pages")

// root is the repository's root, seen from this package's directory.
const root = "../.."

// TestReference fails when a generated reference page is not what the
// registered definitions render now; -update rewrites it.
func TestReference(t *testing.T) {
	pages := []struct {
		path string
		got  []byte
	}{
		{ChecksPage, CheckReference(kinds.Checks.All(), kinds.CheckEngineParams)},
		{StepsPage, StepReference(kinds.Steps.All())},
	}
	for _, p := range pages {
		t.Run(filepath.Base(p.path), func(t *testing.T) {
			file := filepath.Join(root, filepath.FromSlash(p.path))
			if *update {
				if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, p.got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%s: %v: run %s", p.path, err, RegenerateCommand)
			}
			if diff := firstDifference(string(want), string(p.got)); diff != "" {
				t.Fatalf("%s is stale: it is not what the registered definitions render now; run %s\n%s", p.path, RegenerateCommand, diff)
			}
		})
	}
}

// TestReferenceNamesEveryKind guards the renderer itself: every registered
// kind has its section and every parameter its row.
func TestReferenceNamesEveryKind(t *testing.T) {
	checks := string(CheckReference(kinds.Checks.All(), kinds.CheckEngineParams))
	steps := string(StepReference(kinds.Steps.All()))
	if len(kinds.Checks.All()) == 0 || len(kinds.Steps.All()) == 0 {
		t.Fatal("no check or step registered: the renderer has nothing to show")
	}
	for _, d := range kinds.Checks.All() {
		assertKind(t, checks, d.Kind, d.Params)
	}
	for _, p := range kinds.CheckEngineParams {
		if !strings.Contains(checks, "| `"+p.Name+"` |") {
			t.Errorf("check reference: no row for the engine's parameter %s", p.Name)
		}
	}
	for _, d := range kinds.Steps.All() {
		section := assertKind(t, steps, d.Kind, d.Params)
		if d.Destructive && !strings.Contains(section, "Always destructive") {
			t.Errorf("step reference: %s is always destructive and its section does not say so", d.Kind)
		}
		if d.Manager != "" && !strings.Contains(section, "`"+string(d.Manager)+"`") {
			t.Errorf("step reference: %s needs manager %s and its section does not say so", d.Kind, d.Manager)
		}
	}
}

// assertKind finds the kind's section in page and checks that it lists
// every parameter; it returns the section.
func assertKind(t *testing.T, page, kind string, specs []params.Spec) string {
	t.Helper()
	head := "\n## `" + kind + "`\n"
	i := strings.Index(page, head)
	if i < 0 {
		t.Errorf("no section for %s", kind)
		return ""
	}
	section := page[i+len(head):]
	if j := strings.Index(section, "\n## "); j >= 0 {
		section = section[:j]
	}
	for _, p := range specs {
		if !strings.Contains(section, "| `"+p.Name+"` |") {
			t.Errorf("%s: no row for parameter %s", kind, p.Name)
		}
	}
	return section
}

// firstDifference says where two texts part: the first line that differs,
// as the file has it and as the code renders it; "" when they are equal.
func firstDifference(file, rendered string) string {
	if file == rendered {
		return ""
	}
	a, b := strings.Split(file, "\n"), strings.Split(rendered, "\n")
	for i := 0; i < len(a) || i < len(b); i++ {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y || i >= len(a) || i >= len(b) {
			return fmt.Sprintf("first difference at line %d:\n  file:     %q\n  rendered: %q", i+1, x, y)
		}
	}
	return "the files differ"
}
