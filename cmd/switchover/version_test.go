package main

import (
	"runtime/debug"
	"testing"
)

// The version names the code that ran, however the binary was built.
func TestVersionOf(t *testing.T) {
	vcs := func(kv ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/switchover/switchover", Version: "(devel)"}}
		for i := 0; i+1 < len(kv); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return bi
	}
	tests := []struct {
		name    string
		stamped string
		bi      *debug.BuildInfo
		want    string
	}{
		{"stamped by the Makefile", "v1.4.0-3-gabc1234", vcs("vcs.revision", "1dd7a84c0e1f2a3b"), "v1.4.0-3-gabc1234"},
		{"go install at a version", "dev", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, "v1.4.0"},
		{"go build in a clean checkout", "dev", vcs("vcs.revision", "1dd7a84c0e1f2a3b4c5d", "vcs.time", "2026-12-01T10:00:00Z", "vcs.modified", "false"), "1dd7a84c0e1f (2026-12-01T10:00:00Z)"},
		{"go build with changes", "dev", vcs("vcs.revision", "1dd7a84c0e1f2a3b4c5d", "vcs.modified", "true"), "1dd7a84c0e1f-dirty"},
		{"no information at all", "dev", vcs(), "dev"},
		{"no build info", "dev", nil, "dev"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := versionOf(tt.stamped, tt.bi); got != tt.want {
				t.Errorf("versionOf(%q) = %q, want %q", tt.stamped, got, tt.want)
			}
		})
	}
}
