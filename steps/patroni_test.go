package steps

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/patroni"
	"github.com/switchover/switchover/internal/patroni/patronitest"
)

func patroniTarget(urls ...string) (*cluster.Target, *[]string) {
	var out []string
	return &cluster.Target{
		Cluster: &cluster.Cluster{Manager: &cluster.Manager{Kind: "patroni", URLs: urls}},
		Facts:   &cluster.Facts{},
		Output:  func(l string) { out = append(out, l) },
	}, &out
}

func TestPatroniPauseResumeRoundTrip(t *testing.T) {
	t.Parallel()
	f := patronitest.New(t)
	tg, _ := patroniTarget(f.URL())
	pause, resume := &PatroniPause{Pause: true}, &PatroniPause{Pause: false}
	if d := pause.Describe(tg); !strings.Contains(d.Command, `PATCH `+f.URL()+`/config {"pause": true}`) {
		t.Errorf("describe = %+v", d)
	}
	for i, step := range []*PatroniPause{pause, pause, resume, resume} {
		if err := step.Apply(context.Background(), tg); err != nil {
			t.Fatalf("apply %d: %v", i, err)
		}
		if got, _ := f.Config["pause"].(bool); got != step.Pause {
			t.Errorf("apply %d: pause = %v", i, f.Config["pause"])
		}
	}
	if n := f.Count("PATCH /config"); n != 2 {
		t.Errorf("PATCH /config sent %d times, want 2 (the repeats change nothing)", n)
	}
}

func TestPatroniPauseUnreachable(t *testing.T) {
	t.Parallel()
	tg, _ := patroniTarget("http://127.0.0.1:1")
	err := (&PatroniPause{Pause: true}).Apply(context.Background(), tg)
	if err == nil || !strings.Contains(err.Error(), "nothing changed") {
		t.Errorf("err = %v", err)
	}
}

func TestPatroniSwitchoverSettles(t *testing.T) {
	t.Parallel()
	f := patronitest.New(t)
	f.SettleAfter = 3
	tg, out := patroniTarget(f.URL())
	s := &PatroniSwitchover{Leader: "pg1", Candidate: "pg2", Within: 10 * time.Second, writable: alwaysWritable}
	if d := s.Describe(tg); !strings.Contains(d.Command, `POST <pg1's api_url>/switchover {"leader": "pg1", "candidate": "pg2"} (the leader's own API, as GET `+f.URL()+`/cluster names it`) {
		t.Errorf("describe = %+v", d)
	}
	if err := s.Apply(context.Background(), tg); err != nil {
		t.Fatal(err)
	}
	if n := f.Count("GET /cluster"); n < 4 {
		t.Errorf("GET /cluster %d times, want at least 4", n)
	}
	if last := (*out)[len(*out)-1]; !strings.Contains(last, "pg2 leads (running, timeline 4) and takes writes after") {
		t.Errorf("output = %q", *out)
	}
}

// alwaysWritable stands for a candidate whose PostgreSQL takes writes.
func alwaysWritable(context.Context, *cluster.Target) (bool, string, error) {
	return true, "out of recovery, read-write", nil
}

// The step ends once the cluster has settled, without waiting for
// Patroni's answer, which comes only with Patroni's own poll of the DCS.
func TestPatroniSwitchoverDoesNotWaitForTheAnswer(t *testing.T) {
	t.Parallel()
	f := patronitest.New(t)
	f.SettleAfter, f.AnswerAfter = 2, 5*time.Second
	tg, out := patroniTarget(f.URL())
	start := time.Now()
	s := &PatroniSwitchover{Leader: "pg1", Candidate: "pg2", Within: 10 * time.Second, writable: alwaysWritable}
	if err := s.Apply(context.Background(), tg); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("took %s: it waited for the answer", took)
	}
	if got := strings.Join(*out, "\n"); !strings.Contains(got, "pg2 leads") || !strings.Contains(got, "before Patroni answered the request") {
		t.Errorf("output = %q", *out)
	}
}

// Patroni shows the candidate as the running leader, but PostgreSQL on it
// is still in recovery: that is not success, and the error says both.
func TestPatroniSwitchoverWaitsForWrites(t *testing.T) {
	t.Parallel()
	f := patronitest.New(t)
	f.SettleAfter = 0
	tg, _ := patroniTarget(f.URL())
	var asked atomic.Int32
	inRecovery := func(context.Context, *cluster.Target) (bool, string, error) {
		asked.Add(1)
		return false, "in recovery (a standby)", nil
	}
	s := &PatroniSwitchover{Leader: "pg1", Candidate: "pg2", Within: 600 * time.Millisecond, writable: inRecovery}
	err := s.Apply(context.Background(), tg)
	if err == nil {
		t.Fatal("want an error: the candidate never took writes")
	}
	for _, want := range []string{"pg2 is not the running leader taking writes within 600ms", "pg2 leader running", "PostgreSQL on pg2: in recovery (a standby)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v\nwant it to contain %q", err, want)
		}
	}
	if n := asked.Load(); n < 10 {
		t.Errorf("PostgreSQL asked %d times in 600ms, want it asked often", n)
	}
}

func TestPatroniSwitchoverRefused(t *testing.T) {
	t.Parallel()
	f := patronitest.New(t)
	f.RefuseStatus, f.RefuseReason = 412, "Member pg2 is not healthy"
	tg, _ := patroniTarget(f.URL())
	err := (&PatroniSwitchover{Leader: "pg1", Candidate: "pg2", Within: 5 * time.Second, writable: alwaysWritable}).Apply(context.Background(), tg)
	want := `patroni switchover "pg1" to "pg2": patroni refused (412): Member pg2 is not healthy; nothing changed`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
	if n := f.Count("GET /cluster"); n != 3 {
		t.Errorf("GET /cluster %d times, want 3: one look before the request, one for the leader's API, one after the refusal", n)
	}
}

// A resumed run whose switchover Patroni finished meanwhile: the step sees
// the candidate leading, sends nothing, and succeeds once it takes writes;
// with no leader lock held (the switchover under way), it follows too.
func TestPatroniSwitchoverResumed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, seen string
		change     func(f *patronitest.Fake)
	}{
		{"done", "pg2 holds the leader lock already", func(f *patronitest.Fake) {
			f.Members[0].Role, f.Members[1].Role, f.Members[1].State = patroni.RoleReplica, patroni.RoleLeader, patroni.StateRunning
		}},
		{"under way", "no member holds the leader lock", func(f *patronitest.Fake) {
			f.Members[0].Role = patroni.RoleReplica
			// The fake settles only a switchover it was sent; settle by hand.
			go func() {
				time.Sleep(300 * time.Millisecond)
				f.Mu.Lock()
				f.Members[1].Role, f.Members[1].State = patroni.RoleLeader, patroni.StateRunning
				f.Mu.Unlock()
			}()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := patronitest.New(t)
			f.Mu.Lock()
			tc.change(f)
			f.Mu.Unlock()
			tg, out := patroniTarget(f.URL())
			s := &PatroniSwitchover{Leader: "pg1", Candidate: "pg2", Within: 5 * time.Second, writable: alwaysWritable}
			if err := s.Apply(context.Background(), tg); err != nil {
				t.Fatal(err)
			}
			if n := f.Count("POST /switchover"); n != 0 {
				t.Errorf("POST /switchover sent %d times, want none", n)
			}
			if got := strings.Join(*out, "\n"); !strings.Contains(got, tc.seen) || !strings.Contains(got, "following it, nothing sent") || !strings.Contains(got, "pg2 leads") {
				t.Errorf("output = %q", *out)
			}
		})
	}
}

func TestPatroniSwitchoverDoesNotSettle(t *testing.T) {
	t.Parallel()
	f := patronitest.New(t)
	f.SettleAfter = -1
	tg, _ := patroniTarget(f.URL())
	start := time.Now()
	err := (&PatroniSwitchover{Leader: "pg1", Candidate: "pg2", Within: 700 * time.Millisecond, writable: alwaysWritable}).Apply(context.Background(), tg)
	if took := time.Since(start); took < 700*time.Millisecond {
		t.Errorf("gave up after %s, before the deadline", took)
	}
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"pg2 is not the running leader taking writes within 700ms", "/cluster shows: pg1 replica stopping tl 3 lag unknown; pg2 replica streaming tl 3 lag 0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v\nwant it to contain %q", err, want)
		}
	}
}

// Patroni takes another member than the candidate: the step says so at
// once instead of waiting out its deadline with clients held.
func TestPatroniSwitchoverToAnotherMember(t *testing.T) {
	t.Parallel()
	f := patronitest.New(t)
	f.SettleAfter, f.Instead = 1, "pg3"
	tg, _ := patroniTarget(f.URL())
	start := time.Now()
	err := (&PatroniSwitchover{Leader: "pg1", Candidate: "pg2", Within: 20 * time.Second, writable: alwaysWritable}).Apply(context.Background(), tg)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %s: it waited for the deadline", took)
	}
	if err == nil || !strings.Contains(err.Error(), "patroni made pg3 the leader instead of pg2") || !strings.Contains(err.Error(), "pg3 leader running") {
		t.Errorf("err = %v", err)
	}
}
