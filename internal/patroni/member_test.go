package patroni_test

import (
	"testing"

	"github.com/switchover/switchover/internal/patroni"
)

func TestMemberSettled(t *testing.T) {
	t.Parallel()
	tests := []struct {
		role                   patroni.Role
		state                  patroni.MemberState
		leader, replica, synch bool // SettledLeader, SettledReplica, Role.IsSynchronous
	}{
		{role: patroni.RoleLeader, state: patroni.StateRunning, leader: true},
		{role: patroni.RoleStandbyLeader, state: patroni.StateRunning, leader: true},
		{role: patroni.RoleLeader, state: patroni.StateStarting},
		{role: patroni.RoleLeader, state: patroni.StateStreaming},
		{role: patroni.RoleReplica, state: patroni.StateStreaming, replica: true},
		{role: patroni.RoleReplica, state: patroni.StateRunning, replica: true},
		{role: patroni.RoleSyncStandby, state: patroni.StateStreaming, replica: true, synch: true},
		{role: patroni.RoleQuorumStandby, state: patroni.StateRunning, replica: true, synch: true},
		{role: patroni.RoleSyncStandby, state: patroni.StateStopped, synch: true},
		{role: patroni.RoleReplica, state: patroni.StateStopping},
		{role: patroni.RoleReplica, state: "in archive recovery"},
		{role: "", state: patroni.StateRunning},
		{role: "uninitialized", state: patroni.StateStreaming},
	}
	for _, tt := range tests {
		m := patroni.Member{Name: "pg1", Role: tt.role, State: tt.state}
		if got := m.SettledLeader(); got != tt.leader {
			t.Errorf("%s %s: SettledLeader = %t, want %t", tt.role, tt.state, got, tt.leader)
		}
		if got := m.SettledReplica(); got != tt.replica {
			t.Errorf("%s %s: SettledReplica = %t, want %t", tt.role, tt.state, got, tt.replica)
		}
		if got := m.Role.IsSynchronous(); got != tt.synch {
			t.Errorf("%s: IsSynchronous = %t, want %t", tt.role, got, tt.synch)
		}
		if m.IsLeader() == m.Role.IsReplica() && tt.role != "" && tt.role != "uninitialized" {
			t.Errorf("%s: IsLeader and IsReplica both %t", tt.role, m.IsLeader())
		}
	}
}
