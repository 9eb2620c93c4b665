package runbook

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The engine runs any runbook: it knows checks and steps only through
// internal/kinds, never by importing the packages that implement them.
func TestEngineImportsNoKinds(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	seen := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		seen++
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if path == "github.com/switchover/switchover/checks" || path == "github.com/switchover/switchover/steps" {
				t.Errorf("%s imports %s: the engine reaches checks and steps through internal/kinds", f, path)
			}
		}
	}
	if seen == 0 {
		t.Fatal("no file of the engine found")
	}
}
