package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

// A fleet run at a real terminal: the plan, then one approval for the
// whole fleet by typing the fleet's name (again after a slip), then the
// run.
func TestInteractiveFleetRunInAPseudoTerminal(t *testing.T) {
	sb := sandboxtest.New(t, 1)
	dir, jd := t.TempDir(), t.TempDir()
	b, err := os.ReadFile(sb.Inventory())
	if err != nil {
		t.Fatal(err)
	}
	inv := filepath.Join(dir, "c1.yaml")
	if err := os.WriteFile(inv, []byte(strings.Replace(string(b), "cluster: sandbox", "cluster: c1", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(path, []byte("fleet: pty-patch\nplaybook: postgres-streaming-switchover\nclusters:\n  - inventory: c1.yaml\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, keys, scr, done := interactiveAt(t, 160, []string{"NO_COLOR=1"}, "fleet", "run", path, "--journal-dir", jd)
	scr.waitFor(t, "1 ready, 0 refused, 0 done already", 30*time.Second)
	scr.waitFor(t, `about to run the fleet "pty-patch"`, 10*time.Second)
	scr.waitFor(t, "type the fleet name (pty-patch) to confirm", 10*time.Second)
	if strings.Contains(scr.text(), "c1: starting a run") {
		t.Fatalf("a cluster started before the approval:\n%s", scr.text())
	}
	keys("pty-pach\r")
	scr.waitFor(t, `typed "pty-pach", not "pty-patch": try again`, 10*time.Second)
	keys("pty-patch\r")
	if code := exitOf(t, done, 2*time.Minute, scr); code != 0 {
		t.Fatalf("interactive fleet run: exit %d; the terminal shows:\n%s", code, scr.text())
	}
	for _, want := range []string{"c1: starting a run", "c1: done in", "0 lost", "done: every cluster done or skipped"} {
		if !strings.Contains(scr.text(), want) {
			t.Errorf("the terminal does not show %q:\n%s", want, scr.text())
		}
	}
	if p := primaryOf(t, sb); p != "pg2" {
		t.Fatalf("after the fleet run the primary is %q, want pg2", p)
	}
}
