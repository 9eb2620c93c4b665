package cluster

// The poolers of a cluster: a run holds clients in all of them or in none,
// and names each in what it says.

// ClientPooler is the pooler a client-facing probe goes through (the
// canary, a write through the pooler): the first of the inventory's; nil
// when there is none.
func (c *Cluster) ClientPooler() *Pooler {
	if c == nil || len(c.Poolers) == 0 {
		return nil
	}
	return c.Poolers[0]
}

// PoolerNamed returns the pooler called name, or nil.
func (c *Cluster) PoolerNamed(name string) *Pooler {
	if c == nil {
		return nil
	}
	for _, p := range c.Poolers {
		if p != nil && p.Name == name {
			return p
		}
	}
	return nil
}

// PoolerNames returns the poolers' names in the inventory's order.
func (c *Cluster) PoolerNames() []string {
	if c == nil {
		return nil
	}
	out := make([]string, 0, len(c.Poolers))
	for _, p := range c.Poolers {
		out = append(out, p.Name)
	}
	return out
}

// PoolerLabel names p in messages: "pooler" when it is the cluster's only
// one, "pooler NAME" when there are several.
func (c *Cluster) PoolerLabel(p *Pooler) string {
	if c == nil || len(c.Poolers) <= 1 || p == nil {
		return "pooler"
	}
	return "pooler " + p.Name
}
