// Package faults holds the fault suite: real faults against real sandbox
// clusters, each case proving that the switchover ends well or stops
// having changed nothing: one primary, every standby streaming from it,
// writes through the pooler, no acknowledged commit lost, and never two
// nodes acknowledging commits at once, which the sandbox's sampler
// (internal/sandbox/sandboxtest) watches for.
//
// The process killed and resumed, with the real binary (internal/testbin):
// SIGKILL at every step boundary and inside every destructive action of
// the streaming switchover, then `switchover resume` (faults_test.go); the
// same for the patroni-switchover playbook and the rolling restart on a
// Patroni and etcd sandbox, counting the switchover requests Patroni
// received, for repmgr-switchover and for pg-auto-failover-switchover
// (patroni_test.go, repmgr_test.go, pgaf_test.go, with a fenced old
// primary, a hung keeper and a hung monitor); the process killed or
// signalled (SIGHUP, SIGTERM, SIGINT) while PgBouncer holds the clients,
// and the guard that lets them go (window_test.go, killed_test.go,
// guard_test.go); a run whose journal is lost, finished by a colleague
// (lostjournal_test.go); two operators at once (operators_test.go); and a
// multi-host sandbox (network namespaces, an sshd per host) for the runs
// over ssh, network partitions, the rolling patch killed and resumed, and
// each manager on hosts of its own (hosts*_test.go).
//
// Faults injected into a run made in the test's own process
// (playbooks/playbookstest), before it or, through the engine's observer, at
// an exact point of it: those the preflight must refuse with nothing
// changed (a lock or a stopped server on the candidate, a cut replication
// link, two primaries, a long query or a transaction left idle through the
// pooler, session pooling, a hung archive_command, a candidate whose
// pg_hba.conf rejects replication or that would not archive, a host the
// run cannot reach over ssh); those that must end in a rollback, or in a
// switchover done despite them (a session that appears after the
// preflight, replay paused on the candidate, an old primary that does not
// stop in time, a candidate stopped before its promotion, a query that
// PAUSE waits for, an archiver hung at the stop, replication refused once
// the clients are held); and an acknowledged commit of the canary deleted
// behind its back, which must fail the run.
//
// Run it with `go test ./internal/faults -v`: the table of kill cases and
// the table of injected faults are printed at the end, and written to the
// file named by FAULTS_TABLE when it is set.
package faults
