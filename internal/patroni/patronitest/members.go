package patronitest

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// ServeEachMember gives every member listed now an API of its own, which
// /cluster shows as its api_url: POST /restart there restarts that member
// (it becomes Self), as Patroni restarts only the server it manages. It
// lets a test restart several members, one at a time, through one fake.
func (f *Fake) ServeEachMember(t testing.TB) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	if f.members == nil {
		f.members = map[string]*httptest.Server{}
	}
	for _, m := range f.Members {
		name := m.Name
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f.Mu.Lock()
			f.MemberRequests = append(f.MemberRequests, name+" "+r.Method+" "+r.URL.Path)
			if r.Method == http.MethodPost && r.URL.Path == "/restart" {
				f.Self = name
				f.RestartedMembers = append(f.RestartedMembers, name)
			}
			f.Mu.Unlock()
			f.serve(w, r)
		}))
		t.Cleanup(s.Close)
		f.members[name] = s
	}
}
