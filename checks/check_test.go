package checks

import (
	"strings"
	"testing"

	"github.com/switchover/switchover/internal/params"
)

// samples holds, for every registered kind, a valid value for each of its
// required parameters.
var samples = map[string]map[string]string{
	"exec":                     {"command": "true"},
	"tcp.reachable":            {"address": "127.0.0.1:5432"},
	"http.ok":                  {"url": "http://127.0.0.1:8008/primary"},
	"dns.resolves":             {"name": "localhost"},
	"tls.certificate":          {"address": "127.0.0.1:5432"},
	"pg.reachable":             {"node": "pg1"},
	"pg.role":                  {"node": "pg1", "is": "primary"},
	"pg.not_primary":           {"node": "pg2"},
	"patroni.leader":           {"node": "pg1"},
	"patroni.candidate_ok":     {"node": "pg2"},
	"pg.replication":           {"node": "pg2", "upstream": "pg1"},
	"pg.caught_up":             {"node": "pg2", "with": "pg1"},
	"pg.timeline":              {"node": "pg1", "is": "1"},
	"pg.slots":                 {"node": "pg1", "slots": "pg2"},
	"pg.topology":              {"primary": "pg1"},
	"pg.restarted":             {"except": "pg1"},
	"pg.no_blocking_sessions":  {"node": "pg2"},
	"pg.no_prepared_xacts":     {"node": "pg1"},
	"pg.same_major_version":    {},
	"pg.same_cluster":          {},
	"pg.settings_match":        {"settings": "wal_level"},
	"pg.archiver_healthy":      {"node": "pg1"},
	"pg.archiving_kept":        {"primary": "pg1", "candidate": "pg2"},
	"pg.archiving_works":       {"node": "pg2"},
	"pg.delayed_standbys":      {"candidate": "pg2"},
	"pg.replication_reachable": {"upstream": "pg2"},
	"pg.no_long_transactions":  {"node": "pg1"},
	"pg.no_shutdown_blockers":  {"node": "pg1"},
	"pgbouncer.pool_mode":      {},
	"pg.sync_standbys":         {"primary": "pg1", "candidate": "pg2"},
	"pg.sync_after":            {"primary": "pg1", "candidate": "pg2"},
	"pg.sync_kept":             {"node": "pg2"},
	"pg.logical_slots":         {"node": "pg1", "candidate": "pg2"},
	"pg.consumer_slots":        {"node": "pg1"},
	"pg.slots_recreated":       {"node": "pg2"},
	"pgbouncer.routes_to":      {"node": "pg1"},
	"pgbouncer.entries":        {"node": "pg1"},
	"haproxy.routes_to":        {"node": "pg1"},
	"haproxy.server_state":     {"node": "pg1", "is": "routable"},
	"repmgr.agrees":            {},
	"repmgr.daemon_paused":     {},
	"pgaf.settled":             {},
	"pgaf.primary":             {"node": "pg1"},
	"quorum.reachable":         {},
	"cluster.maintenance":      {},
	"host.ready":               {},
	"logical.wal_level":        {"node": "pg1"},
	"logical.replica_identity": {"node": "pg1"},
	"logical.unsupported":      {"node": "pg1"},
	"logical.extensions":       {"from": "pg1", "to": "pg2"},
	"logical.schema_same":      {"from": "pg1", "to": "pg2"},
	"logical.caught_up":        {"subscriber": "pg2", "publisher": "pg1", "subscription": "upgrade"},
}

// sampleCheck builds a check of kind from its sample, every default applied
// (Decode panics on a bad one).
func sampleCheck(t *testing.T, kind string) Check {
	t.Helper()
	def, ok := Lookup(kind)
	if !ok {
		t.Fatalf("%q is not registered", kind)
	}
	raw := map[string]params.Raw{}
	for name, v := range samples[kind] {
		raw[name] = params.Raw{Scalar: v}
	}
	vals, probs := params.Decode(def.Params, raw)
	if len(probs) > 0 {
		t.Fatalf("decode with required parameters: %v", probs)
	}
	c, err := def.New(vals)
	if err != nil {
		t.Fatalf("new with defaults: %v", err)
	}
	return c
}

func TestRegistration(t *testing.T) {
	t.Parallel()
	for kind := range samples {
		if _, ok := Lookup(kind); !ok {
			t.Errorf("sample for %q, which is not registered", kind)
		}
	}
	for _, def := range Kinds() {
		t.Run(def.Kind, func(t *testing.T) {
			t.Parallel()
			if strings.TrimSpace(def.Doc) == "" || strings.Contains(def.Doc, "\n") {
				t.Errorf("doc %q: want one non-empty line", def.Doc)
			}
			if def.New == nil {
				t.Fatal("no New")
			}
			sample, ok := samples[def.Kind]
			if !ok {
				t.Fatalf("no sample for %q", def.Kind)
			}
			seen := map[string]bool{}
			for _, p := range def.Params {
				if seen[p.Name] {
					t.Errorf("parameter %q declared twice", p.Name)
				}
				seen[p.Name] = true
				if strings.TrimSpace(p.Doc) == "" {
					t.Errorf("parameter %q has no doc", p.Name)
				}
				if p.Type == params.Unknown {
					t.Errorf("parameter %q has no type", p.Name)
				}
				if p.Required && p.Default != "" {
					t.Errorf("parameter %q is required and has a default", p.Name)
				}
				if _, given := sample[p.Name]; p.Required && !given {
					t.Fatalf("no sample value for required parameter %q", p.Name)
				}
			}
			d := sampleCheck(t, def.Kind).Describe(nil)
			if d == "" {
				t.Error("describe is empty")
			}
			if node := sample["node"]; node != "" && !strings.Contains(d, node) {
				t.Errorf("describe %q does not name node %s", d, node)
			}
		})
	}
}

// TestPGChecksWithoutInventory runs every pg check with no target: each can
// only say it has no inventory.
func TestPGChecksWithoutInventory(t *testing.T) {
	t.Parallel()
	for kind := range samples {
		want := []string{"no inventory"}
		status := Error
		switch {
		case kind == "cluster.maintenance":
			status, want = Pass, []string{"no cluster manager"}
		case kind == "quorum.reachable":
			want = []string{"no members"}
		case !strings.HasPrefix(kind, "pg."):
			continue
		}
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			assertResult(t, sampleCheck(t, kind).Run(testCtx(t, 0), nil), status, want, nil)
		})
	}
}
