package sandboxtest

import (
	"testing"
	"time"
)

func TestSplits(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return at.Add(time.Duration(n) * time.Millisecond) }
	c := func(node string, start, ack int) Commit { return Commit{Node: node, Start: ms(start), Ack: ms(ack)} }
	tests := []struct {
		name    string
		commits []Commit
		want    int
	}{
		{"one node", []Commit{c("pg1", 0, 2), c("pg1", 20, 22), c("pg1", 21, 40)}, 0},
		{"a switchover: the old primary's last commit before the new one's first",
			[]Commit{c("pg1", 0, 2), c("pg1", 20, 22), c("pg2", 300, 302), c("pg2", 320, 321)}, 0},
		{"touching, not overlapping", []Commit{c("pg1", 0, 20), c("pg2", 20, 25)}, 0},
		{"both commit at one tick", []Commit{c("pg1", 0, 2), c("pg2", 0, 3)}, 1},
		{"a slow commit on the old primary acknowledged after the new one's began",
			[]Commit{c("pg1", 0, 500), c("pg2", 300, 302), c("pg2", 320, 322)}, 2},
		{"given out of order", []Commit{c("pg2", 5, 6), c("pg1", 0, 10)}, 1},
		{"three nodes, one overlap", []Commit{c("pg1", 0, 2), c("pg3", 1, 3), c("pg2", 100, 101)}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := splits(tt.commits); len(got) != tt.want {
				t.Errorf("splits: got %d %v, want %d", len(got), got, tt.want)
			}
		})
	}
}
