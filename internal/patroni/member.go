package patroni

// Role is a member's role as Patroni's /cluster gives it. The zero value
// means Patroni did not say; a role Patroni adds later is kept as its text.
type Role string

// The roles a switchover and a rolling restart tell apart.
const (
	RoleLeader        Role = "leader"         // holds the leader lock of a primary cluster
	RoleStandbyLeader Role = "standby_leader" // holds the leader lock of a standby cluster
	RoleReplica       Role = "replica"        // an asynchronous replica
	RoleSyncStandby   Role = "sync_standby"   // a synchronous standby (synchronous_mode)
	RoleQuorumStandby Role = "quorum_standby" // a quorum synchronous standby (Patroni 4)
)

// IsLeader reports whether the role holds the leader lock.
func (r Role) IsLeader() bool { return r == RoleLeader || r == RoleStandbyLeader }

// IsReplica reports whether the role is one of a replica's, synchronous or
// not: a member Patroni may switch over to.
func (r Role) IsReplica() bool {
	return r == RoleReplica || r == RoleSyncStandby || r == RoleQuorumStandby
}

// IsSynchronous reports whether the role is a synchronous standby's, the
// only kind Patroni switches over to in synchronous_mode.
func (r Role) IsSynchronous() bool { return r == RoleSyncStandby || r == RoleQuorumStandby }

// MemberState is the state of a member's PostgreSQL as Patroni's /cluster
// gives it. (State is the name of the whole cluster's view.) The zero value
// means Patroni did not say; other states Patroni reports ("stopped",
// "crashed", "in archive recovery", ...) are kept as their text.
type MemberState string

// The member states a switchover and a restart wait for or pass through.
const (
	StateRunning   MemberState = "running"   // up: a leader, or a replica not (yet) streaming
	StateStreaming MemberState = "streaming" // a replica whose WAL receiver streams
	StateStarting  MemberState = "starting"  // PostgreSQL is starting
	StateStopping  MemberState = "stopping"  // PostgreSQL is being stopped
	StateStopped   MemberState = "stopped"   // PostgreSQL is down
)

// IsUp reports whether the member's PostgreSQL runs: "running" or
// "streaming". Patroni says "running" of a leader, and of a replica it has
// not seen streaming yet.
func (s MemberState) IsUp() bool { return s == StateRunning || s == StateStreaming }

// SettledLeader reports whether the member leads and its PostgreSQL runs:
// what a switchover waits for on the candidate, a restart on the leader,
// and the sandbox on the first member.
func (m Member) SettledLeader() bool { return m.IsLeader() && m.State == StateRunning }

// SettledReplica reports whether the member is a replica whose PostgreSQL
// is up (running or streaming): what a rolling restart waits for on each
// replica and the sandbox on the others. It says nothing of the lag or the
// timeline; callers that need them check them beside it.
func (m Member) SettledReplica() bool { return m.Role.IsReplica() && m.State.IsUp() }
