package steps

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
)

// printed collects what a step sends to Target.Print.
type printed struct {
	mu    sync.Mutex
	lines []string
}

func (p *printed) target(c *cluster.Cluster) *cluster.Target {
	return &cluster.Target{Cluster: c, Facts: &cluster.Facts{}, Output: func(l string) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.lines = append(p.lines, l)
	}}
}

func (p *printed) all() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// build decodes scalar parameters and builds a step of kind the way the
// runbook loader does.
func build(t *testing.T, kind string, raw map[string]string) Step {
	t.Helper()
	s, err := tryBuild(kind, raw)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func tryBuild(kind string, raw map[string]string) (Step, error) {
	d, ok := Lookup(kind)
	if !ok {
		return nil, fmt.Errorf("kind %q is not registered", kind)
	}
	r := map[string]params.Raw{}
	for k, v := range raw {
		r[k] = params.Raw{Scalar: v}
	}
	v, probs := params.Decode(d.Params, r)
	if len(probs) > 0 {
		return nil, fmt.Errorf("decode %s: %v", kind, probs)
	}
	return d.New(v)
}

func inventory() *cluster.Cluster {
	return &cluster.Cluster{Name: "test", Nodes: map[string]*cluster.Node{
		"pg1": {Name: "pg1", Host: cluster.Host{Transport: "local"}},
		"pg2": {Name: "pg2", Host: cluster.Host{Transport: "rsh", Address: "postgres@pg2"}},
	}}
}

func TestExecApply(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	many := make([]string, 250)
	for i := range many {
		many[i] = fmt.Sprintf("line %d", i+1)
	}
	tests := []struct {
		name      string
		command   string
		node      string
		wantLines []string // exact lines printed; nil skips the check
		wantFile  string   // a file the command must have written; "" for none
		wantData  string   // what wantFile must hold
		wantErr   string   // substring of the error; "" for success
	}{
		{
			name:      "writes a file and prints stdout then stderr",
			command:   fmt.Sprintf("printf 'done\\n' > %s/out.txt; echo one; echo two; echo oops >&2", dir),
			wantLines: []string{"one", "two", "oops"},
			wantFile:  filepath.Join(dir, "out.txt"),
			wantData:  "done\n",
		},
		{
			name:      "runs on a local node",
			command:   "echo on pg1",
			node:      "pg1",
			wantLines: []string{"on pg1"},
		},
		{
			name:      "non-zero exit names the code and the last stderr line",
			command:   "echo progress; echo first >&2; echo 'no such role' >&2; exit 3",
			wantLines: []string{"progress", "first", "no such role"},
			wantErr:   "command exited 3: no such role",
		},
		{
			name:    "non-zero exit without stderr uses the last stdout line",
			command: "echo 'not ready'; exit 2",
			wantErr: "command exited 2: not ready",
		},
		{
			name:      "non-zero exit without output",
			command:   "exit 1",
			wantLines: []string{},
			wantErr:   "command exited 1",
		},
		{
			name:    "killed by a signal",
			command: "echo 'going down' >&2; kill -KILL $$",
			wantErr: "command killed by a signal: going down",
		},
		{
			name:      "output is capped",
			command:   "seq 1 250 | sed 's/^/line /'",
			wantLines: append(append([]string(nil), many[:maxPrintedLines]...), "[50 more lines not shown]"),
		},
		{
			name:    "unknown node",
			command: "true",
			node:    "pg9",
			wantErr: `node "pg9" is not in the inventory`,
		},
		{
			name:    "unknown transport",
			command: "true",
			node:    "pg2",
			wantErr: `node "pg2": transport "rsh" is not supported`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var p printed
			s := build(t, "exec", map[string]string{"command": tt.command, "node": tt.node})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := s.Apply(ctx, p.target(inventory()))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Apply: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("Apply succeeded, want error %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("Apply error = %q, want it to contain %q", err, tt.wantErr)
			}
			if tt.wantLines != nil {
				got := p.all()
				if strings.Join(got, "\n") != strings.Join(tt.wantLines, "\n") || len(got) != len(tt.wantLines) {
					t.Errorf("printed %d lines %q, want %d lines %q", len(got), got, len(tt.wantLines), tt.wantLines)
				}
			}
			if tt.wantFile != "" {
				got, err := os.ReadFile(tt.wantFile)
				if err != nil {
					t.Fatalf("command did not write its file: %v", err)
				}
				if string(got) != tt.wantData {
					t.Errorf("file holds %q, want %q", got, tt.wantData)
				}
			}
		})
	}
}

func TestExecCutOff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		ctx     func() (context.Context, context.CancelFunc)
		wantErr error
		printed []string // output from before the cut-off still reaches Print
	}{
		{
			name: "deadline while running",
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 200*time.Millisecond)
			},
			wantErr: context.DeadlineExceeded,
			printed: []string{"started"},
		},
		{
			name: "cancelled before it starts",
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx, cancel
			},
			wantErr: context.Canceled,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var p printed
			s := build(t, "exec", map[string]string{"command": "echo started; sleep 5"})
			ctx, cancel := tt.ctx()
			defer cancel()
			start := time.Now()
			err := s.Apply(ctx, p.target(nil))
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("Apply took %s after the cut-off, want well under 2s", took)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Apply error = %v, want it to wrap %v", err, tt.wantErr)
			}
			if got := p.all(); strings.Join(got, "\n") != strings.Join(tt.printed, "\n") {
				t.Errorf("printed %q, want %q", got, tt.printed)
			}
		})
	}
}

func TestSleepApply(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		for_    string
		timeout time.Duration
		min     time.Duration // Apply must take at least this long
		max     time.Duration // and at most this long
		wantErr error
	}{
		{name: "sleeps the full time", for_: "100ms", timeout: 5 * time.Second, min: 100 * time.Millisecond, max: 2 * time.Second},
		{name: "zero returns at once", for_: "0s", timeout: 5 * time.Second, max: time.Second},
		{name: "cut off by ctx", for_: "10s", timeout: 100 * time.Millisecond, min: 100 * time.Millisecond, max: 2 * time.Second, wantErr: context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := build(t, "sleep", map[string]string{"for": tt.for_})
			// The clock starts before the deadline is set, so a cut-off
			// sleep can never look shorter than its deadline.
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			err := s.Apply(ctx, nil)
			took := time.Since(start)
			if took < tt.min || took > tt.max {
				t.Errorf("Apply took %s, want between %s and %s", took, tt.min, tt.max)
			}
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("Apply: %v", err)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("Apply error = %v, want it to wrap %v", err, tt.wantErr)
			}
		})
	}
}

func TestManualApply(t *testing.T) {
	t.Parallel()
	var p printed
	s := build(t, "manual", map[string]string{"text": "announce the window in #ops"})
	m, ok := s.(Manual)
	if !ok {
		t.Fatalf("manual step is %T, want it to implement Manual", s)
	}
	if got := m.Checklist(); got != "announce the window in #ops" {
		t.Errorf("Checklist() = %q", got)
	}
	if err := s.Apply(context.Background(), p.target(nil)); err != nil {
		t.Errorf("Apply: %v", err)
	}
	if got := p.all(); len(got) != 0 {
		t.Errorf("Apply printed %q, want nothing", got)
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		kind string
		raw  map[string]string
		c    *cluster.Cluster
		want Effect
	}{
		{
			name: "exec here",
			kind: "exec",
			raw:  map[string]string{"command": "pg_ctl -D /data status"},
			want: Effect{Node: "local", Command: "pg_ctl -D /data status", Changes: "runs a shell command"},
		},
		{
			name: "exec on a node",
			kind: "exec",
			raw:  map[string]string{"command": "systemctl reload pgbouncer", "node": "pg1"},
			c:    inventory(),
			want: Effect{Node: "pg1 (local)", Command: "systemctl reload pgbouncer", Changes: "runs a shell command"},
		},
		{
			name: "exec on a node without inventory",
			kind: "exec",
			raw:  map[string]string{"command": "true", "node": "pg1"},
			want: Effect{Node: `pg1 (node "pg1": no inventory given)`, Command: "true", Changes: "runs a shell command"},
		},
		{
			name: "sleep",
			kind: "sleep",
			raw:  map[string]string{"for": "2s"},
			want: Effect{Node: "local", Command: "sleep 2s", Changes: ""},
		},
		{
			name: "sleep normalises the duration",
			kind: "sleep",
			raw:  map[string]string{"for": "90s"},
			want: Effect{Node: "local", Command: "sleep 1m30s", Changes: ""},
		},
		{
			name: "manual",
			kind: "manual",
			raw:  map[string]string{"text": "announce the window in #ops"},
			want: Effect{Node: "operator", Command: "announce the window in #ops", Changes: "nothing by itself; an operator confirms it was done"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var p printed
			s := build(t, tt.kind, tt.raw)
			if got := s.Describe(p.target(tt.c)); got != tt.want {
				t.Errorf("Describe = %+v, want %+v", got, tt.want)
			}
			if got := s.Describe(nil); tt.c == nil && got != tt.want {
				t.Errorf("Describe(nil) = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		kind    string
		raw     map[string]string
		wantErr string
	}{
		{name: "exec without command", kind: "exec", raw: map[string]string{}, wantErr: `missing required parameter "command"`},
		{name: "exec with blank command", kind: "exec", raw: map[string]string{"command": "  "}, wantErr: `parameter "command" is empty`},
		{name: "exec with a typo", kind: "exec", raw: map[string]string{"comand": "true"}, wantErr: `did you mean "command"?`},
		{name: "sleep without for", kind: "sleep", raw: map[string]string{}, wantErr: `missing required parameter "for"`},
		{name: "sleep with a bad duration", kind: "sleep", raw: map[string]string{"for": "soon"}, wantErr: `want a duration`},
		{name: "manual without text", kind: "manual", raw: map[string]string{}, wantErr: `missing required parameter "text"`},
		{name: "manual with blank text", kind: "manual", raw: map[string]string{"text": " "}, wantErr: `parameter "text" is empty`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := tryBuild(tt.kind, tt.raw)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("build error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestRegistry(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"exec", "sleep", "manual"} {
		d, ok := Lookup(kind)
		if !ok {
			t.Errorf("Lookup(%q) found nothing", kind)
			continue
		}
		if d.Kind != kind {
			t.Errorf("Lookup(%q).Kind = %q", kind, d.Kind)
		}
	}
	if _, ok := Lookup("no-such-kind"); ok {
		t.Error(`Lookup("no-such-kind") found a definition`)
	}
	for _, d := range Kinds() {
		if d.Doc == "" {
			t.Errorf("kind %q has no Doc", d.Kind)
		}
		if d.New == nil {
			t.Errorf("kind %q has no New", d.Kind)
		}
		for _, p := range d.Params {
			if p.Doc == "" {
				t.Errorf("kind %q: parameter %q has no Doc", d.Kind, p.Name)
			}
			if p.Type == params.Unknown {
				t.Errorf("kind %q: parameter %q has no Type", d.Kind, p.Name)
			}
		}
	}
	names := Names()
	for i := 1; i < len(names); i++ {
		if names[i-1] >= names[i] {
			t.Errorf("Names() not sorted: %q", names)
		}
	}
}

func TestRegisterDuplicatePanics(t *testing.T) {
	t.Parallel()
	// A throwaway kind that no runbook uses; registering it twice must panic
	// and leave the first registration in place.
	kind := fmt.Sprintf("test-duplicate-%d", time.Now().UnixNano())
	// It is a complete definition, so TestRegistry, which may run alongside,
	// finds nothing wrong with it.
	newStep := func(params.Values) (Step, error) { return &Sleep{}, nil }
	Register(Definition{Kind: kind, Doc: "first", New: newStep})
	panicked := func() (msg any) {
		defer func() { msg = recover() }()
		Register(Definition{Kind: kind, Doc: "second", New: newStep})
		return nil
	}()
	if panicked == nil {
		t.Fatal("Register of a duplicate kind did not panic")
	}
	if !strings.Contains(fmt.Sprint(panicked), "registered twice") {
		t.Errorf("panic = %v, want it to say the kind was registered twice", panicked)
	}
	d, ok := Lookup(kind)
	if !ok || d.Doc != "first" {
		t.Errorf("after the duplicate, Lookup = %+v, %v; want the first definition", d, ok)
	}
}
