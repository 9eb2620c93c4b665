package cluster

import "strings"

// The facts with which a run keeps what the old primary promised: the
// synchronous replication it gave (recorded at preflight, applied on the
// candidate, verified at the end), and the replication slots that do not
// move with the primary role.
const (
	// SyncBeforeFact is the old primary's synchronous_standby_names.
	SyncBeforeFact = "sync.before"
	// SyncBeforeCountFact is how many sync or quorum standbys the old
	// primary's pg_stat_replication showed at preflight.
	SyncBeforeCountFact = "sync.before_count"
	// SyncAfterFact is the synchronous_standby_names the new primary gets.
	SyncAfterFact = "sync.after"
	// SyncWantCountFact is how many sync or quorum standbys the new
	// primary must show once every standby follows it.
	SyncWantCountFact = "sync.want_count"
	// LogicalSlotsLostFact lists the logical slots the run was allowed to
	// lose, one line each.
	LogicalSlotsLostFact = "slots.logical_lost"
	// ArchivingBeforeFact says how the old primary archived its WAL at
	// preflight (pg.Archiving's words), or "off"; the new primary must
	// archive too when it did.
	ArchivingBeforeFact = "archive.before"
	// SlotsToRecreateFact lists, comma-separated, the physical slots of
	// other consumers (backup tools) to create on the new primary.
	SlotsToRecreateFact = "slots.recreate"
)

// SyncWasFact records a node's synchronous_standby_names before this run
// changed it; its absence means the run did not change it.
func SyncWasFact(node string) string { return node + ".synchronous_standby_names_was" }

// SyncWasAlteredFact records whether that value was set with ALTER SYSTEM
// ("true"), so that undoing the change sets it again, or came from
// elsewhere ("false"), so that undoing it is ALTER SYSTEM RESET.
func SyncWasAlteredFact(node string) string { return node + ".synchronous_standby_names_was_altered" }

// SplitList reads a comma-separated fact back into its items.
func SplitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
