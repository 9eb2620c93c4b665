package sandbox

import "testing"

func TestMissingAndInstallCommand(t *testing.T) {
	t.Parallel()
	needs := []Need{
		{What: "server", Package: "postgresql"},
		{What: "pgbouncer", Package: "pgbouncer", Found: "/usr/sbin/pgbouncer"},
		{What: "sshd", Package: "openssh-server"},
		{What: "ssh", Package: "openssh-server"},
	}
	got := Missing(needs)
	if len(got) != 2 || got[0] != "postgresql" || got[1] != "openssh-server" {
		t.Fatalf("Missing = %v, want [postgresql openssh-server] (each once, in order)", got)
	}
	if c := InstallCommand(got, false); c != "sudo apt-get install -y --no-install-recommends postgresql openssh-server" {
		t.Errorf("as a user: %q", c)
	}
	if c := InstallCommand(got, true); c != "apt-get install -y --no-install-recommends postgresql openssh-server" {
		t.Errorf("as root: %q", c)
	}
	if got := Missing(needs[1:2]); len(got) != 0 {
		t.Errorf("nothing missing: %v", got)
	}
}
