package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// FleetMarker is the file that makes a directory a fleet sandbox: it lists
// the clusters, their directories, ports and processes, so that `sandbox
// down` finds every one of them.
const FleetMarker = "fleet-sandbox.json"

// fleetClusterTimeout bounds the bring-up of one cluster of a fleet.
const fleetClusterTimeout = 3 * time.Minute

// fleetDownTimeout bounds the bring-down of one cluster of a fleet.
const fleetDownTimeout = 90 * time.Second

// FleetOptions set how a fleet sandbox is brought up: several small
// plain-streaming clusters side by side, and a fleet file naming them.
type FleetOptions struct {
	Dir      string // the fleet's directory; cluster cI lives in Dir/cI
	Clusters int    // how many clusters, 1 to MaxFleetClusters
	PortBase int    // cluster cI on PortBase+FleetStride*(I-1) (see FleetLayout); 0 picks free ports
	Standbys int    // standbys per cluster; 0 is 1
	BinDir   string // PostgreSQL's bin directory; "" finds it
	RunAs    string // OS user for the servers; "" as for a single sandbox
	// Parallel bounds how many clusters come up at once; 0 is one per
	// core, at most 4 (on two cores, two at a time).
	Parallel int
	Log      func(format string, args ...any)
}

// FleetCluster is one cluster of a fleet sandbox, as the marker records it.
type FleetCluster struct {
	ClusterPorts
	Dir  string         `json:"dir"`
	PIDs map[string]int `json:"pids,omitempty"` // its processes once up, by name (pg1, pgbouncer, ...)
}

// Inventory is the path of the cluster's inventory.
func (c FleetCluster) Inventory() string { return filepath.Join(c.Dir, "inventory.yaml") }

// Fleet is a running fleet sandbox, as recorded in DIR/fleet-sandbox.json.
type Fleet struct {
	Dir      string         `json:"dir"`
	PortBase int            `json:"port_base"`
	Clusters []FleetCluster `json:"clusters"`
}

// FleetFile is the path of the fleet file the sandbox wrote.
func (f *Fleet) FleetFile() string { return filepath.Join(f.Dir, FleetFileName) }

func (f *Fleet) marker() string { return filepath.Join(f.Dir, FleetMarker) }

func (f *Fleet) save() error {
	b, _ := json.MarshalIndent(f, "", "  ")
	return os.WriteFile(f.marker(), append(b, '\n'), 0o644)
}

// IsFleet reports whether dir holds a fleet sandbox.
func IsFleet(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, FleetMarker))
	return err == nil
}

// LoadFleet reads the fleet sandbox recorded in dir.
func LoadFleet(dir string) (*Fleet, error) {
	path := filepath.Join(dir, FleetMarker)
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no fleet sandbox in %s (bring one up with `switchover sandbox up --clusters N --dir %s`)", dir, dir)
		}
		return nil, err
	}
	var f Fleet
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &f, nil
}

// upFunc brings up one sandbox: Up, or a test's stand-in.
type upFunc func(context.Context, Options) (*Sandbox, error)

// FleetUp brings up a fleet sandbox: o.Clusters plain-streaming clusters
// c1.. in Dir/c1.., each with its own port range, cluster name and
// inventory, a few at a time, and Dir/fleet.yaml naming them. It refuses
// before starting anything when a port of any cluster's range is taken.
// When a cluster fails to come up, the others are brought down and the
// directory is removed: a failed FleetUp leaves nothing behind.
func FleetUp(ctx context.Context, o FleetOptions) (*Fleet, error) {
	return fleetUp(ctx, o, Up)
}

func fleetUp(ctx context.Context, o FleetOptions, up upFunc) (*Fleet, error) {
	if o.Standbys == 0 {
		o.Standbys = 1
	}
	if o.Parallel <= 0 {
		o.Parallel = min(runtime.NumCPU(), 4)
	}
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
	var logMu sync.Mutex // the clusters come up side by side; their lines do not mix
	log := o.Log
	o.Log = func(format string, args ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		log(format, args...)
	}
	if o.Dir == "" {
		return nil, errors.New("no sandbox directory given")
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	base := o.PortBase
	if base == 0 {
		base = DefaultPortBase // to check the counts first
	}
	layout, err := FleetLayout(base, o.Clusters, o.Standbys)
	if err != nil {
		return nil, err
	}
	if err := checkFleetDir(dir, layout); err != nil {
		return nil, err
	}
	if o.PortBase != 0 {
		if err := checkFleetPorts(layout); err != nil {
			return nil, err
		}
	}
	// What every cluster needs, found once: one message, not one a cluster.
	if o.BinDir, err = FindBinDir(o.BinDir); err != nil {
		return nil, err
	}
	if _, err := findPgBouncer(); err != nil {
		return nil, err
	}
	if o.RunAs, err = runAsUser(o.RunAs); err != nil {
		return nil, err
	}
	if o.PortBase == 0 {
		if base, err = FreePortBase(FleetStride*o.Clusters - 1); err != nil {
			return nil, err
		}
		if layout, err = FleetLayout(base, o.Clusters, o.Standbys); err != nil {
			return nil, err
		}
	}

	f := &Fleet{Dir: dir, PortBase: base}
	for _, c := range layout {
		f.Clusters = append(f.Clusters, FleetCluster{ClusterPorts: c, Dir: filepath.Join(dir, c.Name)})
	}
	_, statErr := os.Stat(dir)
	created := errors.Is(statErr, os.ErrNotExist)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := f.save(); err != nil {
		f.removeFiles(created)
		return nil, err
	}
	sbs, err := f.upClusters(ctx, o, up)
	if err == nil {
		err = f.finish(sbs)
	}
	if err != nil {
		return nil, f.rollback(sbs, created, err)
	}
	return f, nil
}

// checkFleetDir refuses a directory that holds a sandbox, a fleet, or a
// file a fleet would write.
func checkFleetDir(dir string, layout []ClusterPorts) error {
	if IsFleet(dir) {
		return fmt.Errorf("%s already holds a fleet sandbox; `switchover sandbox down --dir %s` first", dir, dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "sandbox.json")); err == nil {
		return fmt.Errorf("%s already holds a sandbox; `switchover sandbox down --dir %s` first", dir, dir)
	}
	paths := []string{filepath.Join(dir, FleetFileName)}
	for _, c := range layout {
		paths = append(paths, filepath.Join(dir, c.Name))
	}
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%s exists already: a fleet sandbox writes it; pick another --dir", p)
		}
	}
	return nil
}

// upClusters brings up every cluster, o.Parallel at a time. The first to
// fail stops the others (those on their way up clean up after themselves;
// those not started never start). It returns the sandboxes that came up,
// by index, and the first failure, naming its cluster.
func (f *Fleet) upClusters(ctx context.Context, o FleetOptions, up upFunc) ([]*Sandbox, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sbs := make([]*Sandbox, len(f.Clusters))
	var (
		mu     sync.Mutex
		first  error
		states = make([]string, len(f.Clusters))
	)
	slots := make(chan struct{}, o.Parallel)
	var wg sync.WaitGroup
	for i, c := range f.Clusters {
		// In order: c1 and c2 first, c3 when one of them is done.
		acquired := false
		select {
		case slots <- struct{}{}:
			acquired = true
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			if acquired {
				<-slots
			}
			mu.Lock()
			states[i] = "was not started"
			mu.Unlock()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			log := func(format string, args ...any) { o.Log("%s: "+format, append([]any{c.Name}, args...)...) }
			log("ports %s, in %s", c.Range(), c.Dir)
			cctx, ccancel := context.WithTimeout(ctx, fleetClusterTimeout)
			defer ccancel()
			sb, err := up(cctx, Options{Dir: c.Dir, Name: c.Name, PortBase: c.Base(), Standbys: len(c.Standbys), BinDir: o.BinDir, RunAs: o.RunAs, Log: log})
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				sbs[i] = sb
				states[i] = "was up"
				return
			}
			if first == nil {
				if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
					err = fmt.Errorf("not up within %s: %w", fleetClusterTimeout, err)
				}
				first = fmt.Errorf("cluster %s did not come up: %w", c.Name, err)
				states[i] = "failed"
				cancel()
				return
			}
			states[i] = "was stopped on its way up"
		}()
	}
	wg.Wait() // each cluster's bring-up is bounded by fleetClusterTimeout
	if first == nil {
		return sbs, nil
	}
	var others []string
	for i, c := range f.Clusters {
		if states[i] != "failed" {
			others = append(others, c.Name+" "+states[i])
		}
	}
	if len(others) > 0 {
		first = fmt.Errorf("%w (%s)", first, strings.Join(others, ", "))
	}
	return sbs, first
}

// finish records the clusters' processes and writes the fleet file.
func (f *Fleet) finish(sbs []*Sandbox) error {
	for i, sb := range sbs {
		f.Clusters[i].PIDs = sb.PIDs()
	}
	if err := f.save(); err != nil {
		return err
	}
	ports := make([]ClusterPorts, len(f.Clusters))
	for i, c := range f.Clusters {
		ports[i] = c.ClusterPorts
	}
	return os.WriteFile(f.FleetFile(), RenderFleetFile(ports), 0o644)
}

// rollback brings down the clusters that came up and removes what the
// fleet wrote, then says so after why.
func (f *Fleet) rollback(sbs []*Sandbox, created bool, why error) error {
	var failed []error
	for i, sb := range sbs {
		// A cluster that did not come up cleaned up after itself; its
		// down finds nothing left then, and stops what it would find.
		ctx, cancel := context.WithTimeout(context.Background(), fleetDownTimeout)
		var err error
		if sb != nil {
			err = sb.Down(ctx)
		} else {
			err = f.Clusters[i].down(ctx)
		}
		cancel()
		if err != nil {
			failed = append(failed, fmt.Errorf("bring %s down: %w", f.Clusters[i].Name, err))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%w; and %w: %s is left as it is; `switchover sandbox down --dir %s` stops what still runs", why, errors.Join(failed...), f.Dir, f.Dir)
	}
	f.removeFiles(created)
	return fmt.Errorf("%w; nothing is left running and %s is removed", why, f.Dir)
}

// removeFiles removes what the fleet wrote: its directory when it made it,
// else its files and its clusters' directories.
func (f *Fleet) removeFiles(created bool) {
	if created {
		_ = os.RemoveAll(f.Dir)
		return
	}
	for _, c := range f.Clusters {
		_ = os.RemoveAll(c.Dir)
	}
	_ = os.Remove(f.FleetFile())
	_ = os.Remove(f.marker())
}

// PIDs returns the fleet's running processes by cluster and name
// ("c1/pg1", "c2/pgbouncer", ...).
func (f *Fleet) PIDs() map[string]int {
	out := map[string]int{}
	for _, c := range f.Clusters {
		for name, pid := range c.sandbox().PIDs() {
			out[c.Name+"/"+name] = pid
		}
	}
	return out
}

// sandbox is the cluster as its sandbox.json records it or, when that is
// missing (a bring-up cut short), as the marker places it: either finds
// its processes by their PID files.
func (c FleetCluster) sandbox() *Sandbox {
	if sb, err := Load(c.Dir); err == nil {
		return sb
	}
	sb := &Sandbox{Dir: c.Dir, Name: c.Name, PortBase: c.Pooler}
	for i, p := range append([]int{c.Primary}, c.Standbys...) {
		name := fmt.Sprintf("pg%d", i+1)
		sb.Nodes = append(sb.Nodes, Node{Name: name, Port: p, DataDir: filepath.Join(c.Dir, name)})
	}
	return sb
}

// Down brings every cluster down (their own processes, by PID) and
// removes the fleet's directory. A cluster that does not come down is
// named, and the directory is kept so that Down can be run again.
func (f *Fleet) Down(ctx context.Context) error {
	var failed []error
	for _, c := range f.Clusters {
		if err := c.down(ctx); err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", c.Name, err))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%w; %s is kept", errors.Join(failed...), f.Dir)
	}
	if f.Dir == "" || f.Dir == "/" {
		return fmt.Errorf("refusing to remove %q", f.Dir)
	}
	return os.RemoveAll(f.Dir)
}

// down stops the cluster's processes: those its PID files name, and any
// the marker recorded that still runs from its directory.
func (c FleetCluster) down(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, fleetDownTimeout)
	defer cancel()
	sb := c.sandbox()
	known := map[int]bool{}
	for _, pid := range sb.PIDs() {
		known[pid] = true
	}
	stray := map[string]int{}
	names := make([]string, 0, len(c.PIDs))
	for name := range c.PIDs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if pid := c.PIDs[name]; pid > 0 && !known[pid] && processMatches(pid, c.Dir) {
			stray[name] = pid
			_ = syscall.Kill(pid, syscall.SIGINT)
		}
	}
	if err := waitGone(ctx, stray, 30*time.Second); err != nil {
		return err
	}
	return sb.Down(ctx)
}
