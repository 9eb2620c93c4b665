package fleet

import "slices"

// pool runs work for each of cs, at most as many at once as limits
// allow, in cs's order; a cluster a per-label limit holds back lets a
// later one go first. running are clusters already under way (runs a
// fleet process before this one started, waited for now): they start at
// once, whatever the limits, and count against them. Before each start,
// hold is asked: true leaves the cluster unstarted. pool returns, when
// every work it started has returned, the clusters it did not start.
func pool(cs, running []*Cluster, limits Limits, hold func(*Cluster) bool, work func(*Cluster)) (left []*Cluster) {
	done := make(chan *Cluster)
	var busy []*Cluster
	start := func(c *Cluster) {
		busy = append(busy, c)
		go func() {
			work(c)
			done <- c
		}()
	}
	for _, c := range running {
		start(c)
	}
	pending := slices.Clone(cs)
	for {
		for i := 0; i < len(pending); {
			c := pending[i]
			if limits.Allows(c, busy) && (hold == nil || !hold(c)) {
				pending = slices.Delete(pending, i, i+1)
				start(c)
				continue
			}
			i++
		}
		if len(busy) == 0 {
			return pending
		}
		c := <-done
		busy = slices.DeleteFunc(busy, func(b *Cluster) bool { return b == c })
	}
}
