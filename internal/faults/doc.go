// Package faults holds the fault suite: tests that build the real switchover
// binary, run the streaming switchover playbook against a real sandbox
// cluster, kill the process with SIGKILL at every step boundary and inside
// every destructive action, resume the run, and prove that it ends well: one
// primary, every standby streaming from it, writes through the pooler, no
// acknowledged commit lost, and never two writable primaries at once. The
// Patroni cases do the same to the patroni-switchover playbook on a real
// Patroni and etcd sandbox, around the switchover that Patroni carries on
// alone once asked, and count the switchover requests Patroni received.
//
// Run it with `go test ./internal/faults -v`; the table of cases is printed
// at the end, and written to the file named by FAULTS_TABLE when it is set.
package faults
