package runbook

// phase is the part of a step's lifecycle an event or a failure belongs to.
// The zero value is unknown (no phase); the journal keeps its text.
type phase string

// The phases of a step.
const (
	phaseUnknown     phase = ""
	phaseRequires    phase = "requires"    // preconditions
	phaseApproval    phase = "approval"    // the operator's approval
	phaseAction      phase = "action"      // the action itself
	phaseEnsures     phase = "ensures"     // postconditions
	phaseSettle      phase = "settle"      // a resumed step cut off mid-action
	phaseInterrupted phase = "interrupted" // the operator stopped the run
	phaseJournal     phase = "journal"     // the journal could not be written
)

// String returns the phase as the journal and StepError name it.
func (p phase) String() string { return string(p) }

// sentinel is the outcome a failure in this phase maps to: a failed
// precondition changed nothing, a refused approval is a decline, anything
// else may have changed the cluster.
func (p phase) sentinel() error {
	switch p {
	case phaseRequires:
		return ErrPrecondition
	case phaseApproval:
		return ErrDeclined
	}
	return ErrAction
}
