package steps

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/patroni/patronitest"
)

func patroniTarget(urls ...string) (*cluster.Target, *[]string) {
	var out []string
	return &cluster.Target{
		Cluster: &cluster.Cluster{Manager: &cluster.Manager{Kind: "patroni", URLs: urls}},
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
	s := &PatroniSwitchover{Leader: "pg1", Candidate: "pg2", Within: 10 * time.Second}
	if d := s.Describe(tg); !strings.Contains(d.Command, `POST `+f.URL()+`/switchover {"leader": "pg1", "candidate": "pg2"}`) {
		t.Errorf("describe = %+v", d)
	}
	if err := s.Apply(context.Background(), tg); err != nil {
		t.Fatal(err)
	}
	if n := f.Count("GET /cluster"); n < 4 {
		t.Errorf("GET /cluster %d times, want at least 4", n)
	}
	if last := (*out)[len(*out)-1]; !strings.Contains(last, "pg2 leads (running, timeline 4)") {
		t.Errorf("output = %q", *out)
	}
}

func TestPatroniSwitchoverRefused(t *testing.T) {
	t.Parallel()
	f := patronitest.New(t)
	f.RefuseStatus, f.RefuseReason = 412, "Member pg2 is not healthy"
	tg, _ := patroniTarget(f.URL())
	err := (&PatroniSwitchover{Leader: "pg1", Candidate: "pg2", Within: 5 * time.Second}).Apply(context.Background(), tg)
	want := `patroni switchover "pg1" to "pg2": patroni refused (412): Member pg2 is not healthy; nothing changed`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
	if n := f.Count("GET /cluster"); n != 0 {
		t.Errorf("GET /cluster %d times after a refusal", n)
	}
}

func TestPatroniSwitchoverDoesNotSettle(t *testing.T) {
	t.Parallel()
	f := patronitest.New(t)
	f.SettleAfter = -1
	tg, _ := patroniTarget(f.URL())
	start := time.Now()
	err := (&PatroniSwitchover{Leader: "pg1", Candidate: "pg2", Within: 700 * time.Millisecond}).Apply(context.Background(), tg)
	if took := time.Since(start); took < 700*time.Millisecond {
		t.Errorf("gave up after %s, before the deadline", took)
	}
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"pg2 is not the running leader within 700ms", "/cluster shows: pg1 replica stopping tl 3 lag unknown; pg2 replica streaming tl 3 lag 0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v\nwant it to contain %q", err, want)
		}
	}
}
