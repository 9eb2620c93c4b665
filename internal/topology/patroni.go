package topology

import (
	"context"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/patroni"
)

// PatroniView is the cluster as Patroni's /cluster shows it.
type PatroniView struct {
	URL     string          `json:"url,omitempty"` // the API that answered, without a password
	Error   string          `json:"error,omitempty"`
	Paused  bool            `json:"paused"`
	Leader  string          `json:"leader,omitempty"` // who holds the leader lock; "" for none (or several)
	Members []PatroniMember `json:"members,omitempty"`
	// Others are members the inventory does not have.
	Others []string `json:"members_not_in_inventory,omitempty"`
}

// PatroniMember is one member in Patroni's view; the JSON names are those
// `switchover status --json` prints for each node, and are stable.
type PatroniMember struct {
	Name          string              `json:"name,omitempty"`
	Role          patroni.Role        `json:"role"`
	State         patroni.MemberState `json:"state"`
	Timeline      int64               `json:"timeline,omitempty"`
	LagBytes      *int64              `json:"lag_bytes,omitempty"`
	NoFailover    bool                `json:"nofailover,omitempty"`
	NoLoadBalance bool                `json:"noloadbalance,omitempty"`
	leader        bool
}

// IsLeader reports whether the member holds the leader lock.
func (m *PatroniMember) IsLeader() bool { return m.leader }

// askPatroni reads /cluster from the first member API that answers.
func askPatroni(ctx context.Context, m *cluster.Manager) *PatroniView {
	v := &PatroniView{}
	c, err := patroni.New(m)
	if err != nil {
		v.Error = oneLine(err.Error())
		return v
	}
	st, err := c.Cluster(ctx)
	if err != nil {
		v.Error = oneLine(err.Error())
		return v
	}
	v.URL, v.Paused = st.URL, st.Pause
	for _, m := range st.Members {
		pm := PatroniMember{Name: m.Name, Role: m.Role, State: m.State, Timeline: m.Timeline,
			NoFailover: bool(m.Tags.NoFailover), NoLoadBalance: bool(m.Tags.NoLoadBalance), leader: m.IsLeader()}
		if m.Lag.Known {
			l := m.Lag.Bytes
			pm.LagBytes = &l
		}
		v.Members = append(v.Members, pm)
	}
	if l := st.Leaders(); len(l) == 1 {
		v.Leader = l[0].Name
	}
	return v
}

// patroniView puts each node's member beside what PostgreSQL said and
// says where they disagree: a leader PostgreSQL calls a standby, or a
// replica it calls a primary.
func patroniView(_ context.Context, t *Topology, _ *addressBook) {
	v := t.Patroni
	if v == nil || v.Error != "" {
		return
	}
	known := map[string]bool{}
	for _, n := range t.Nodes {
		known[n.Name] = true
		var m *PatroniMember
		for i := range v.Members {
			if v.Members[i].Name == n.Name {
				m = &v.Members[i]
			}
		}
		if m == nil {
			n.Disagrees = "patroni lists no member " + n.Name
			continue
		}
		pm := *m
		pm.Name = "" // the node names it
		n.Patroni = &pm
		switch {
		case !n.Reachable():
		case m.leader && n.Role == RoleStandby && m.Role != patroni.RoleStandbyLeader:
			n.Disagrees = "patroni shows it leading, PostgreSQL is in recovery"
		case !m.leader && n.Role == RolePrimary:
			n.Disagrees = "patroni shows a replica, PostgreSQL is out of recovery"
		}
	}
	for _, m := range v.Members {
		if !known[m.Name] {
			v.Others = append(v.Others, m.Name)
		}
	}
}
