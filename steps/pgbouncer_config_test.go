package steps

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
	"github.com/switchover/switchover/internal/transport"
)

// TestWritePoolerConfig: the write the repoint makes from a text read
// before the pause is one command that writes nothing when the file
// changed since; unguarded, it writes whatever is there.
func TestWritePoolerConfig(t *testing.T) {
	t.Parallel()
	const read, updated = "[databases]\napp = host=a port=1\n", "[databases]\napp = host=b port=2\n"
	tests := []struct {
		name    string
		onDisk  string
		guarded bool
		wantErr error
		want    string
	}{
		{name: "unchanged since it was read: written", onDisk: read, guarded: true, want: updated},
		{name: "changed since it was read: left as it is", onDisk: read + "; an operator's line\n", guarded: true,
			wantErr: errConfigChanged, want: read + "; an operator's line\n"},
		{name: "not guarded: written", onDisk: read + "; an operator's line\n", want: updated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "pgbouncer.ini")
			if err := os.WriteFile(path, []byte(tt.onDisk), 0o640); err != nil {
				t.Fatal(err)
			}
			err := writePoolerConfig(testCtx(t, 10*time.Second), transport.Local{}, path, read, updated, tt.guarded)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("writePoolerConfig = %v, want %v", err, tt.wantErr)
			}
			got, _ := os.ReadFile(path)
			if string(got) != tt.want {
				t.Errorf("the file holds %q, want %q", got, tt.want)
			}
			if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o640 {
				t.Errorf("the file's mode: %v, %v; want 0640 kept", info.Mode().Perm(), err)
			}
		})
	}
}

// TestRepointReadsAgainWhenChanged: a repoint given a text the pause read
// that is no longer the file's writes nothing from it, reads the file
// again, and acts on what is there.
func TestRepointReadsAgainWhenChanged(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Shared(t)
	tg, p := sandboxTarget(sb)
	tg.Session = &cluster.Session{}
	path := sb.PoolerConfig()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	entry := poolerEntry(t, sb) // pg1's
	pg2, _ := sb.Node("pg2")
	stale := strings.Replace(string(before), entry, "app = host=127.0.0.1 port="+strconv.Itoa(pg2.Port)+" dbname=app", 1) + "; stale\n"
	tg.Session.Put(sessionPoolerConfig(path), stale)
	out := mustApply(t, tg, p, "pgbouncer.repoint", map[string]string{"to": "pg1"})
	wantLine(t, out, "changed since the pause read it; reading it again")
	wantLine(t, out, "app already points at")
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Errorf("the file changed:\n%s\nwant it as it was:\n%s", after, before)
	}
	if _, ok := keptPoolerConfig(tg, path); ok {
		t.Errorf("the text the pause read is still kept after the repoint")
	}
}
