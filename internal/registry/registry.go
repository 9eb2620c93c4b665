// Package registry is the table of named kinds that checks and steps each
// keep: definitions registered at start-up by name, looked up when a
// runbook is resolved, listed for `switchover checks` and `switchover steps`.
package registry

import (
	"fmt"
	"sort"
	"sync"
)

// Registry holds definitions of type D by name.
type Registry[D any] struct {
	what string         // "checks" or "steps", for the panic message
	name func(D) string // the name a definition registers under
	mu   sync.RWMutex
	m    map[string]D
}

// New returns an empty registry whose definitions are named by name.
func New[D any](what string, name func(D) string) *Registry[D] {
	return &Registry[D]{what: what, name: name, m: map[string]D{}}
}

// Register adds a definition. It panics on a duplicate name: that is a
// programming error, found by every test run.
func (r *Registry[D]) Register(d D) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.name(d)
	if _, dup := r.m[n]; dup {
		panic(fmt.Sprintf("%s: %q registered twice", r.what, n))
	}
	r.m[n] = d
}

// Lookup returns the definition registered as name.
func (r *Registry[D]) Lookup(name string) (D, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	d, ok := r.m[name]
	return d, ok
}

// All returns every definition, sorted by name.
func (r *Registry[D]) All() []D {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]D, 0, len(r.m))
	for _, d := range r.m {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return r.name(out[i]) < r.name(out[j]) })
	return out
}

// Names returns every registered name, sorted.
func (r *Registry[D]) Names() []string {
	all := r.All()
	out := make([]string, len(all))
	for i, d := range all {
		out[i] = r.name(d)
	}
	return out
}
