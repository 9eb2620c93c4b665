// Package playbooks holds the runbooks shipped inside the binary. A DBA can
// run one by name (`switchover run NAME -i inventory.yaml`) or print it
// (`switchover playbooks show NAME`) to adapt it.
package playbooks

import (
	"embed"
	"io/fs"
	"sort"
	"strings"
)

//go:embed *.yaml
var files embed.FS

// Names returns the shipped playbooks' names, sorted.
func Names() []string {
	entries, _ := fs.ReadDir(files, ".")
	var out []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".yaml"); ok {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// Read returns the source of a shipped playbook, by name with or without
// the .yaml suffix.
func Read(name string) ([]byte, bool) {
	b, err := files.ReadFile(strings.TrimSuffix(name, ".yaml") + ".yaml")
	return b, err == nil
}
