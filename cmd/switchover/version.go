package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func newVersionCmd(io *streams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(*cobra.Command, []string) error {
			bi, _ := debug.ReadBuildInfo()
			fmt.Fprintf(io.out, "switchover %s %s/%s %s\n", versionOf(version, bi), runtime.GOOS, runtime.GOARCH, runtime.Version())
			return nil
		},
	}
}

// versionOf says which build this is, so that a report or a bug names the
// code that ran: the version stamped with -ldflags (the Makefile's `git
// describe`), else the module version `go install ...@v1.2.3` records,
// else the commit the go tool recorded from the checkout it built (with
// -dirty when the tree had changes), else "dev".
func versionOf(stamped string, bi *debug.BuildInfo) string {
	if stamped != "" && stamped != "dev" {
		return stamped
	}
	if bi == nil {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, when string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	if when != "" {
		rev += " (" + when + ")"
	}
	return rev
}
