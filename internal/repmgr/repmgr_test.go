package repmgr

import (
	"reflect"
	"testing"

	"github.com/switchover/switchover/internal/cluster"
)

func TestDisagreements(t *testing.T) {
	t.Parallel()
	registered := []Record{
		{ID: 1, Name: "pg1", Type: "primary", Active: true},
		{ID: 2, Name: "pg2", Type: "standby", UpstreamID: 1, Upstream: "pg1", Active: true},
		{ID: 3, Name: "pg3", Type: "standby", UpstreamID: 1, Upstream: "pg1", Active: true},
	}
	asRegistered := []Actual{
		{Name: "pg1", Reachable: true, Primary: true},
		{Name: "pg2", Reachable: true, Upstream: "pg1"},
		{Name: "pg3", Reachable: true, Upstream: "pg1"},
	}
	// After our switchover to pg2, before repmgr registers it.
	switched := []Actual{
		{Name: "pg1", Reachable: true, Upstream: "pg2"},
		{Name: "pg2", Reachable: true, Primary: true},
		{Name: "pg3", Reachable: true, Upstream: "pg2"},
	}
	tests := []struct {
		name    string
		records []Record
		from    string
		actual  []Actual
		want    map[string]string
	}{
		{"agree", registered, "pg1", asRegistered, map[string]string{}},
		{"switched, not registered", registered, "pg2", switched, map[string]string{
			"pg1": "repmgr has it registered as the primary, PostgreSQL is in recovery",
			"pg2": "repmgr has it registered as a standby, PostgreSQL is out of recovery",
			"pg3": "repmgr has its upstream as pg1, it streams from pg2",
		}},
		{"a node that does not answer is left out", registered, "pg1",
			[]Actual{{Name: "pg1", Reachable: true, Primary: true}, {Name: "pg2"}, {Name: "pg3", Reachable: true, Upstream: "pg1"}}, map[string]string{}},
		{"unregistered and inactive", []Record{registered[0], {ID: 2, Name: "pg2", Type: "standby", Upstream: "pg1", Active: false}}, "pg1", asRegistered, map[string]string{
			"pg2": "repmgr has it registered inactive",
			"pg3": "repmgr has no record of it",
		}},
		{"no table read", nil, "", asRegistered, map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := &View{From: tt.from, Records: tt.records}
			if got := v.Disagreements(tt.actual); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Disagreements = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPrimary(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		records []Record
		want    string
	}{
		{"one", []Record{{Name: "pg1", Type: "primary", Active: true}, {Name: "pg2", Type: "standby", Active: true}}, "pg1"},
		{"inactive old primary", []Record{{Name: "pg1", Type: "primary", Active: false}, {Name: "pg2", Type: "primary", Active: true}}, "pg2"},
		{"two", []Record{{Name: "pg1", Type: "primary", Active: true}, {Name: "pg2", Type: "primary", Active: true}}, ""},
		{"none", []Record{{Name: "pg2", Type: "standby", Active: true}}, ""},
	}
	for _, tt := range tests {
		if got := (&View{Records: tt.records}).Primary(); got != tt.want {
			t.Errorf("%s: Primary() = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestCommandLine(t *testing.T) {
	t.Parallel()
	m := &managerFixture
	got, err := CommandLine(m, "pg2", "standby", "register", "--force", "--upstream-node-id=1")
	if want := "repmgr -f '/etc/repmgr/pg 2.conf' standby register --force --upstream-node-id=1"; err != nil || got != want {
		t.Errorf("CommandLine = %q, %v; want %q", got, err, want)
	}
	if _, err := CommandLine(m, "pg9"); err == nil {
		t.Error("CommandLine for a node without a repmgr.conf: no error")
	}
}

var managerFixture = cluster.Manager{Kind: "repmgr", Configs: map[string]string{"pg2": "/etc/repmgr/pg 2.conf"}}
