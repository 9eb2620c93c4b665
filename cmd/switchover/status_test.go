package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/patroni/patronitest"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/internal/transport"
)

// status shows the cluster as it is: roles, upstreams, lag, the pooler's
// target and pause, and a node that does not answer.
func TestStatusOfASandbox(t *testing.T) {
	sb := sandboxtest.New(t, 2)
	code, out, errOut := executeT(t, "status", "-i", sb.Inventory())
	if code != 0 {
		t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"pg1   primary", "pg2   standby  1         pg1 (127.0.0.1:", "primary:  pg1", "pooler:   pgbouncer sends database app to pg1", "manager:  no cluster manager"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := pg.ConnectAdmin(ctx, sb.AdminConninfo())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "PAUSE app"); err != nil {
		t.Fatal(err)
	}
	defer admin.Exec(context.Background(), "RESUME app")
	pg3, _ := sb.Node("pg3")
	if o, err := (transport.Local{User: sb.RunAs}).Run(ctx, fmt.Sprintf("%s/pg_ctl stop -D %s -m fast -w", sb.BinDir, pg3.DataDir)); err != nil || o.ExitCode != 0 {
		t.Fatalf("stop pg3: %v %s", err, o.Combined())
	}

	code, out, errOut = executeT(t, "status", "-i", sb.Inventory(), "--json")
	if code != exitPrecondition {
		t.Fatalf("status --json with pg3 down: exit %d, want 3 (degraded)\n%s%s", code, out, errOut)
	}
	var st struct {
		Primaries []string `json:"primaries"`
		Nodes     []struct {
			Node, Role, Error, UpstreamNode string
			LagBytes                        *int64 `json:"lag_bytes"`
		} `json:"nodes"`
		Pooler struct {
			Paused     bool   `json:"paused"`
			TargetNode string `json:"target_node"`
		} `json:"pooler"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json is not JSON: %v\n%s", err, out)
	}
	if len(st.Primaries) != 1 || st.Primaries[0] != "pg1" || !st.Pooler.Paused || st.Pooler.TargetNode != "pg1" {
		t.Fatalf("status --json = %s; want pg1 the primary and the pooler paused, pointing at pg1", out)
	}
	if n := st.Nodes[2]; n.Node != "pg3" || n.Error == "" || n.Role != "" {
		t.Fatalf("pg3 = %+v, want it unreachable with the reason", n)
	}
	if n := st.Nodes[1]; n.LagBytes == nil || n.Role != "standby" {
		t.Fatalf("pg2 = %+v, want a standby with its lag", n)
	}
	_, out, _ = executeT(t, "status", "-i", sb.Inventory())
	if !strings.Contains(out, "pg3   unreachable") || !strings.Contains(out, "PAUSED: clients wait") {
		t.Fatalf("status does not show pg3 unreachable and the pooler paused:\n%s", out)
	}
}

// status of a Patroni cluster puts Patroni's view beside PostgreSQL's and
// says where they disagree: here Patroni (a fake API) names pg2 the leader
// while PostgreSQL on pg1 is the primary, and lists a member the inventory
// does not have.
func TestStatusShowsPatroniBesidePostgreSQL(t *testing.T) {
	sb := sandboxtest.Shared(t)
	f := patronitest.New(t)
	f.Members[0].Role, f.Members[0].State = "replica", "streaming"
	f.Members[1].Role, f.Members[1].State = "leader", "running"
	f.Members[2].Tags = map[string]any{"nofailover": true}
	f.Members = append(f.Members, patronitest.Member{Name: "pg9", Role: "replica", State: "running"})
	src, err := os.ReadFile(sb.Inventory())
	if err != nil {
		t.Fatal(err)
	}
	inv := filepath.Join(t.TempDir(), "inventory.yaml")
	body := strings.TrimRight(string(src), "\n") + "\nmanager:\n  kind: patroni\n  urls: [\"" + f.URL() + "\"]\n"
	if err := os.WriteFile(inv, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := executeT(t, "status", "-i", inv)
	if code != 0 {
		t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"PATRONI", "replica streaming (DISAGREES)", "leader running (DISAGREES)", "nofailover",
		"patroni:  pg2 holds the leader lock",
		"patroni:  members not in the inventory: pg9",
		"DISAGREE: pg1: patroni shows a replica, PostgreSQL is out of recovery",
		"DISAGREE: pg2: patroni shows it leading, PostgreSQL is in recovery",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	code, out, errOut = executeT(t, "status", "-i", inv, "--json")
	if code != 0 {
		t.Fatalf("status --json: exit %d\n%s%s", code, out, errOut)
	}
	var st struct {
		Leader string `json:"patroni_leader"`
		Nodes  []struct {
			Node      string `json:"node"`
			Disagrees string `json:"disagrees"`
			Patroni   *struct {
				Role       string `json:"role"`
				NoFailover bool   `json:"nofailover"`
			} `json:"patroni"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json is not JSON: %v\n%s", err, out)
	}
	if st.Leader != "pg2" || st.Nodes[0].Disagrees == "" || st.Nodes[0].Patroni == nil || st.Nodes[0].Patroni.Role != "replica" ||
		st.Nodes[2].Patroni == nil || !st.Nodes[2].Patroni.NoFailover || st.Nodes[2].Disagrees != "" {
		t.Errorf("status --json = %s", out)
	}
}
