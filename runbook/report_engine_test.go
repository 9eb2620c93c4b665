package runbook

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/switchover/switchover/runbook/journal"
	"github.com/switchover/switchover/runbook/spec"
)

// TestReportOfARealEngineRun builds a report from the journal a real run
// of the engine wrote: a failed postcondition, its rollback, the finally
// section.
func TestReportOfARealEngineRun(t *testing.T) {
	t.Parallel()
	l := &callLog{}
	stop := act(l, "stop-primary")
	stop.Ensures = []*spec.Cond{cond(failCheck("primary-stopped"))}
	stop.OnFailure = "restore"
	promote := act(l, "promote")
	promote.PointOfNoReturn = true
	p := newPlan(act(l, "checkpoint"), stop, promote)
	p.PointOfNoReturn = "promote"
	withRollback(p, "restore", act(l, "start-primary"))
	withFinally(p, act(l, "resume-pooler"))
	o := options(t, &recorder{})
	res, err := Run(context.Background(), p, o)
	if !errors.Is(err, ErrAction) {
		t.Fatalf("Run: %v, want ErrAction", err)
	}
	evs, err := journal.ReadJournal(o.JournalDir, res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	r, err := journal.BuildReport(evs, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	steps := map[string]journal.ReportStep{}
	for _, s := range r.Steps {
		got = append(got, string(s.Section)+"/"+s.Name+"="+string(s.State))
		steps[s.Name] = s
	}
	want := []string{"steps/checkpoint=done", "steps/stop-primary=failed", "steps/promote=pending",
		"rollback:restore/start-primary=done", "finally/resume-pooler=done"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("steps = %v, want %v", got, want)
	}
	if r.RunID != res.RunID || r.Outcome != journal.OutcomeFailed || r.StartedBy != "dba@bastion-1" || r.Failure == nil ||
		r.Failure.Step != "stop-primary" || r.Failure.Phase != "ensures" || r.PointOfNoReturn == nil || r.PointOfNoReturn.Passed {
		t.Errorf("report: %+v", r)
	}
	s := steps["stop-primary"]
	if len(s.Checks) != 1 || s.Checks[0].Phase != "ensures" || s.Checks[0].Status != "fail" || len(s.Actions) != 1 {
		t.Errorf("stop-primary: %+v", s)
	}
	if len(r.Sections) != 2 || r.Sections[0].Section != spec.RollbackSection("restore") || r.Sections[1].Section != spec.SectionFinally {
		t.Errorf("sections: %+v", r.Sections)
	}
}
