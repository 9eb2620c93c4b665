package checks

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/transport/sshtest"
)

// TestHostReady looks at hosts over a private sshd and locally: a good
// host passes; a closed ssh port, a bin_dir without pg_ctl, a data_dir of
// another owner, a missing data_dir and a pooler config that is not there
// fail, each naming the host and the reason.
func TestHostReady(t *testing.T) {
	t.Parallel()
	server := sshtest.Start(t)
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	for _, p := range []string{"pg_ctl", "pg_controldata"} {
		if err := os.WriteFile(filepath.Join(bin, p), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	noCtl := t.TempDir()
	if err := os.WriteFile(filepath.Join(noCtl, "pg_controldata"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	foreign := t.TempDir()
	foreignOwner := ""
	if os.Geteuid() == 0 {
		nobody, err := user.Lookup("nobody")
		if err == nil {
			uid, _ := strconv.Atoi(nobody.Uid)
			gid, _ := strconv.Atoi(nobody.Gid)
			if err := os.Chown(foreign, uid, gid); err == nil {
				foreignOwner = "nobody"
			}
		}
	}
	config := filepath.Join(t.TempDir(), "pgbouncer.ini")
	if err := os.WriteFile(config, []byte("[databases]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	address, sshConfig := server.Host()
	good := cluster.Host{Transport: "ssh", Address: address, SSHConfig: sshConfig}
	closed := cluster.Host{Transport: "ssh", Address: server.Closed(), SSHConfig: sshConfig}
	local := cluster.Host{Transport: "local"}
	node := func(name string, h cluster.Host, binDir, dataDir string) *cluster.Node {
		return &cluster.Node{Name: name, Host: h, BinDir: binDir, DataDir: dataDir}
	}
	tests := []struct {
		name   string
		nodes  []*cluster.Node
		pooler *cluster.Pooler
		skip   string
		status Status
		want   []string
		avoid  []string
	}{
		{name: "good hosts over ssh and locally", status: Pass,
			nodes:  []*cluster.Node{node("pg1", good, bin, data), node("pg2", local, bin, data), node("pg3", good, "", "")},
			pooler: &cluster.Pooler{Kind: "pgbouncer", Config: config, Host: good},
			want:   []string{"pg1 (ssh test)", "pg2 (local)", "pooler (ssh test)"}, avoid: []string{"pg3"}},
		{name: "the ssh port closed", status: Fail,
			nodes: []*cluster.Node{node("pg1", good, bin, data), node("pg2", closed, bin, data)},
			want:  []string{"pg2 (ssh test:1): connection refused"}, avoid: []string{"pg1 (ssh test): "}},
		{name: "bin_dir without pg_ctl", status: Fail,
			nodes: []*cluster.Node{node("pg1", good, noCtl, data)},
			want:  []string{"pg1 (ssh test): bin_dir " + noCtl + " lacks pg_ctl executable by " + me.Username}, avoid: []string{"lacks pg_controldata"}},
		{name: "a bin_dir that is not there", status: Fail,
			nodes: []*cluster.Node{node("pg1", good, "/nonexistent/bin", data)},
			want:  []string{"lacks pg_ctl", "lacks pg_controldata"}},
		{name: "data_dir owned by another user", status: Fail, skip: map[bool]string{true: "needs root to give a directory to nobody"}[foreignOwner == ""],
			nodes: []*cluster.Node{node("pg1", good, bin, foreign)},
			want:  []string{"pg1 (ssh test): data_dir " + foreign + " is owned by nobody, not " + me.Username}},
		{name: "data_dir missing", status: Fail,
			nodes: []*cluster.Node{node("pg1", local, bin, filepath.Join(data, "missing"))},
			want:  []string{"pg1 (local): data_dir " + filepath.Join(data, "missing") + " is missing"}},
		{name: "the pooler config missing", status: Fail,
			nodes:  []*cluster.Node{node("pg1", good, bin, data)},
			pooler: &cluster.Pooler{Kind: "pgbouncer", Config: config + ".gone", Host: good},
			want:   []string{"pooler (ssh test): pooler config " + config + ".gone is missing"}},
		{name: "a local user that cannot be switched to", status: Fail,
			nodes: []*cluster.Node{node("pg1", cluster.Host{Transport: "local", User: "no-such-user-here"}, bin, data)},
			want:  []string{"pg1 (local as no-such-user-here): run as no-such-user-here"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.skip != "" {
				t.Skip(tt.skip)
			}
			c := &cluster.Cluster{Nodes: map[string]*cluster.Node{}}
			if tt.pooler != nil {
				c.Poolers = []*cluster.Pooler{tt.pooler}
			}
			for _, n := range tt.nodes {
				c.Nodes[n.Name] = n
				c.Order = append(c.Order, n.Name)
			}
			tg := &cluster.Target{Cluster: c}
			check := mustBuild(t, "host.ready", map[string]any{})
			desc := check.Describe(tg)
			for _, n := range tt.nodes {
				if n.DataDir != "" && !strings.Contains(desc, n.Name+" on ") {
					t.Errorf("Describe = %q, want it to name %s and its host", desc, n.Name)
				}
			}
			r := runTimed(t, check, tg, 30*time.Second)
			assertResult(t, r, tt.status, tt.want, tt.avoid)
		})
	}
}

// TestHostReadyCommand pins the script a node's host runs: it only looks.
func TestHostReadyCommand(t *testing.T) {
	t.Parallel()
	got := nodeReadyCommand(&cluster.Node{BinDir: "/usr/lib/postgresql/15/bin", DataDir: "/srv/pg data"})
	for _, want := range []string{
		"[ -f /usr/lib/postgresql/15/bin/pg_ctl ] && [ -x /usr/lib/postgresql/15/bin/pg_ctl ]",
		"[ -x /usr/lib/postgresql/15/bin/pg_controldata ]",
		"stat -c %U '/srv/pg data'",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("command %q lacks %q", got, want)
		}
	}
	for _, word := range []string{"rm ", "mv ", "chown", "chmod", ">"} {
		if strings.Contains(strings.ReplaceAll(strings.ReplaceAll(got, "2>/dev/null", ""), ">/dev/null", ""), word) {
			t.Errorf("command %q holds %q: it must only look", got, word)
		}
	}
	if got := nodeReadyCommand(&cluster.Node{DataDir: "/d"}); !strings.Contains(got, "command -v pg_ctl") {
		t.Errorf("without bin_dir, command %q does not look for pg_ctl on the PATH", got)
	}
}
