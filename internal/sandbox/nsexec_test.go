package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"os/user"
	"strings"
	"testing"
	"time"
)

// TestNSExecRunInput: a command run on a sandbox host, in its network
// namespace as the servers' user, reads the input given to it.
func TestNSExecRunInput(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI is set and the tests do not run as root: a network namespace needs root")
		}
		t.Skip("a network namespace needs root")
	}
	if _, err := exec.LookPath("runuser"); err != nil {
		t.Skipf("no runuser here: %v", err)
	}
	if _, err := user.Lookup("nobody"); err != nil {
		t.Skip("no user nobody here")
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	netns := "swo-nsexec-" + hex.EncodeToString(suffix)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := ipCmd(ctx, "", "netns", "add", netns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := ipCmd(context.Background(), "", "netns", "del", netns); err != nil {
			t.Errorf("remove the test's namespace: %v", err)
		}
	})
	out, err := nsExec{netns: netns, user: "nobody"}.RunInput(ctx, "id -un; ip -o link | wc -l | tr -d ' '; cat", strings.NewReader("password=s3cret\n"))
	if err != nil {
		t.Fatalf("RunInput: %v", err)
	}
	// A fresh namespace has one link, its loopback.
	if want := "nobody\n1\npassword=s3cret\n"; out.Stdout != want || out.ExitCode != 0 {
		t.Errorf("RunInput = %+v, want exit code 0 and stdout %q", out, want)
	}
}
