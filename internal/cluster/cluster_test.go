package cluster

import (
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNodeOrder(t *testing.T) {
	nodes := map[string]*Node{"pg1": {Name: "pg1"}, "pg2": {Name: "pg2"}, "pg3": {Name: "pg3"}}
	tests := []struct {
		name  string
		order []string
		want  []string
	}{
		{"the inventory's order", []string{"pg3", "pg1", "pg2"}, []string{"pg3", "pg1", "pg2"}},
		{"no order: by name", nil, []string{"pg1", "pg2", "pg3"}},
		{"a node missing: by name", []string{"pg3", "pg1"}, []string{"pg1", "pg2", "pg3"}},
		{"a node twice: by name", []string{"pg3", "pg3", "pg1", "pg2"}, []string{"pg1", "pg2", "pg3"}},
		{"a node not in the inventory: by name", []string{"pg3", "pg1", "pg9"}, []string{"pg1", "pg2", "pg3"}},
	}
	for _, tt := range tests {
		c := &Cluster{Nodes: nodes, Order: tt.order}
		if got := c.NodeOrder(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: NodeOrder = %v, want %v", tt.name, got, tt.want)
		}
	}
	var none *Cluster
	if none.NodeOrder() != nil || none.NodeNames() != nil {
		t.Error("a nil cluster has nodes")
	}
}

func TestExecutor(t *testing.T) {
	c := &Cluster{Nodes: map[string]*Node{"pg1": {Name: "pg1"}}}
	if ex, err := c.Executor(""); err != nil || ex.Where() != "local" {
		t.Errorf(`Executor("") = %v, %v; want this machine`, ex, err)
	}
	if _, err := c.Executor("pg9"); err == nil || !strings.Contains(err.Error(), `node "pg9" is not in the inventory`) {
		t.Errorf("Executor of an unknown node: %v", err)
	}
	var none *Cluster
	if _, err := none.Executor("pg1"); err == nil || !strings.Contains(err.Error(), "no inventory given") {
		t.Errorf("Executor without an inventory: %v", err)
	}
}

// A green cluster's nodes are found by name, blue's first, through the
// target and the executor; walking the cluster still sees blue only.
func TestGreenNodes(t *testing.T) {
	green := &Cluster{Name: "green", Nodes: map[string]*Node{
		"green1": {Name: "green1", Host: Host{Transport: "ssh", Address: "db9"}},
	}, Order: []string{"green1"}}
	c := &Cluster{Name: "blue", Nodes: map[string]*Node{"pg1": {Name: "pg1"}, "pg2": {Name: "pg2"}}, Order: []string{"pg1", "pg2"}, Green: green}
	tgt := &Target{Cluster: c}
	for _, name := range []string{"pg1", "green1"} {
		n, err := tgt.Node(name)
		if err != nil || n.Name != name {
			t.Errorf("Target.Node(%q) = %v, %v", name, n, err)
		}
	}
	if _, err := tgt.Node("green2"); err == nil || !strings.Contains(err.Error(), `node "green2" is not in the inventory`) {
		t.Errorf("Target.Node of an unknown node: %v", err)
	}
	if ex, err := c.Executor("green1"); err != nil || !strings.Contains(ex.Where(), "db9") {
		t.Errorf("Executor(green1) = %v, %v; want ssh to db9", ex, err)
	}
	if got := c.NodeOrder(); !reflect.DeepEqual(got, []string{"pg1", "pg2"}) {
		t.Errorf("NodeOrder = %v, want blue's only", got)
	}
	if got := c.NodeNames(); !reflect.DeepEqual(got, []string{"pg1", "pg2"}) {
		t.Errorf("NodeNames = %v, want blue's only", got)
	}
	var none *Cluster
	if _, ok := none.Node("pg1"); ok {
		t.Error("a nil cluster has a node")
	}
}

// The primary_conninfo a follower gets: the upstream's address, user and
// TLS settings, its own application_name, no database, and never the
// password the inventory may hold.
func TestFollowConninfo(t *testing.T) {
	up := &Node{Name: "pg2", Conninfo: "host=10.0.0.2 port=5433 user=replicator password=s3cret dbname=app sslmode=require application_name=ops"}
	got, err := up.FollowConninfo("pg1")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"host=10.0.0.2", "port=5433", "user=replicator", "sslmode=require", "application_name=pg1"} {
		if !strings.Contains(got, want) {
			t.Errorf("FollowConninfo = %q, want it to hold %q", got, want)
		}
	}
	for _, not := range []string{"s3cret", "password", "dbname", "application_name=ops"} {
		if strings.Contains(got, not) {
			t.Errorf("FollowConninfo = %q, which holds %q", got, not)
		}
	}
	if _, err := (&Node{Name: "pgx", Conninfo: "host=a port=notaport"}).FollowConninfo("pg1"); err == nil || !strings.Contains(err.Error(), `conninfo of "pgx"`) {
		t.Errorf("FollowConninfo of a bad conninfo: %v", err)
	}
}

func TestFacts(t *testing.T) {
	var seen []string
	f := &Facts{OnSet: func(k, v string) { seen = append(seen, k+"="+v) }}
	f.Set("a", "1")
	f.Restore("b", "2")
	if v, ok := f.Get("a"); !ok || v != "1" {
		t.Errorf(`Get("a") = %q, %v`, v, ok)
	}
	if v, ok := f.Get("b"); !ok || v != "2" {
		t.Errorf(`Get("b") = %q, %v`, v, ok)
	}
	if _, ok := f.Get("c"); ok {
		t.Error(`Get("c") knows a fact never set`)
	}
	if !reflect.DeepEqual(seen, []string{"a=1"}) {
		t.Errorf("OnSet saw %v, want only the fact set (a restored one is not journaled again)", seen)
	}

	at := time.Date(2026, 12, 7, 8, 0, 0, 123456789, time.UTC)
	f.SetRestarted("pg1", at)
	if got, ok, err := f.Restarted("pg1"); err != nil || !ok || !got.Equal(at) {
		t.Errorf("Restarted = %v, %v, %v; want %v", got, ok, err, at)
	}
	if _, ok, err := f.Restarted("pg2"); ok || err != nil {
		t.Errorf("Restarted of a node never restarted: %v, %v", ok, err)
	}
	f.Set(RestartedFact("pg3"), "yesterday")
	if _, ok, err := f.Restarted("pg3"); !ok || err == nil {
		t.Errorf("Restarted of a fact that is no time: %v, %v; want an error", ok, err)
	}
	var none *Facts
	if _, ok, err := none.Restarted("pg1"); ok || err != nil {
		t.Errorf("Restarted without facts: %v, %v", ok, err)
	}

	// Facts are set from concurrent checks and steps.
	f = &Facts{}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() { f.Set("k", string(rune('a'+i%26))) })
	}
	wg.Wait()
	if _, ok := f.Get("k"); !ok {
		t.Error("a fact set concurrently is lost")
	}
}

func TestHold(t *testing.T) {
	f := &Facts{}
	if _, _, ok := f.Hold(); ok {
		t.Fatal("a hold before any began")
	}
	now := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	f.SetHold(now.Add(30*time.Second), now.Add(20*time.Second))
	held, steps, ok := f.Hold()
	if !ok || !held.Equal(now.Add(30*time.Second)) || !steps.Equal(now.Add(20*time.Second)) {
		t.Errorf("Hold = %v, %v, %v", held, steps, ok)
	}
	f.ClearHold()
	if _, _, ok := f.Hold(); ok {
		t.Error("a hold after ClearHold")
	}
	for _, tt := range []struct{ budget, want time.Duration }{
		{30 * time.Second, 10 * time.Second},
		{6 * time.Second, 2 * time.Second},
		{2 * time.Second, time.Second},
		{500 * time.Millisecond, 500 * time.Millisecond},
		{time.Minute, 10 * time.Second},
	} {
		if got := HoldReserve(tt.budget); got != tt.want {
			t.Errorf("HoldReserve(%s) = %s, want %s", tt.budget, got, tt.want)
		}
	}
}

// holdRecorder is a ClientHold that records what it was told.
type holdRecorder struct {
	begun, ended int
	err          error
}

func (h *holdRecorder) Begin(time.Time) error { h.begun++; return h.err }
func (h *holdRecorder) End()                  { h.ended++ }

func TestTargetHold(t *testing.T) {
	h := &holdRecorder{}
	tg := &Target{Facts: &Facts{}, Hold: h}
	if err := tg.BeginHold(6 * time.Second); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := tg.Facts.Hold(); !ok || h.begun != 1 {
		t.Errorf("BeginHold: hold recorded %v, guard begun %d times", ok, h.begun)
	}
	tg.EndHold()
	if _, _, ok := tg.Facts.Hold(); ok || h.ended != 1 {
		t.Errorf("EndHold: hold still recorded %v, guard ended %d times", ok, h.ended)
	}
	h.err = errors.New("no guard")
	if err := tg.BeginHold(time.Second); err == nil {
		t.Error("BeginHold went on without its guard")
	}
	if _, _, ok := tg.Facts.Hold(); ok {
		t.Error("a hold recorded although its guard could not begin")
	}
}

func TestTargetOutput(t *testing.T) {
	var lines []string
	unchanged := 0
	tg := &Target{Output: func(s string) { lines = append(lines, s) }, NoChange: func() { unchanged++ }}
	tg.Print("a")
	tg.Unchanged("b")
	if !reflect.DeepEqual(lines, []string{"a", "b"}) || unchanged != 1 {
		t.Errorf("lines %v, NoChange called %d times", lines, unchanged)
	}
	var none *Target
	if _, err := none.Node("pg1"); err == nil {
		t.Error("Node without a target")
	}
}

func TestPoolers(t *testing.T) {
	one := &Cluster{Poolers: []*Pooler{{Name: "pgbouncer"}}}
	two := &Cluster{Poolers: []*Pooler{{Name: "pgb1"}, {Name: "pgb2"}}}
	if one.ClientPooler().Name != "pgbouncer" || two.ClientPooler().Name != "pgb1" || (&Cluster{}).ClientPooler() != nil {
		t.Error("ClientPooler is not the first of the inventory's")
	}
	if two.PoolerNamed("pgb2") != two.Poolers[1] || two.PoolerNamed("pgb9") != nil {
		t.Error("PoolerNamed")
	}
	if got := two.PoolerNames(); !reflect.DeepEqual(got, []string{"pgb1", "pgb2"}) {
		t.Errorf("PoolerNames = %v", got)
	}
	if one.PoolerLabel(one.Poolers[0]) != "pooler" || two.PoolerLabel(two.Poolers[1]) != "pooler pgb2" {
		t.Error("PoolerLabel")
	}
}

func TestRefused(t *testing.T) {
	r := Refused{"pgb2": {"app", "app_ro"}, "pgb1": {"app"}}
	if got := r.Describe(); got != "pgb1: app; pgb2: app, app_ro" {
		t.Errorf("Describe = %q", got)
	}
	if got := r.String(); got != `{"pgb1":["app"],"pgb2":["app","app_ro"]}` {
		t.Errorf("String = %q", got)
	}
	if got := SplitList(" a, ,b ,c"); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Errorf("SplitList = %v", got)
	}
}
