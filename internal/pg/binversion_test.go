package pg

import "testing"

func TestMajorOfVersionText(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int{
		"postgres (PostgreSQL) 17.2\n":                       17,
		"postgres (PostgreSQL) 15.8 (Debian 15.8-0+deb12u1)": 15,
		"PostgreSQL 16.4":                                    16,
		"postgres (PostgreSQL) 18beta1":                      18,
		"postgres (PostgreSQL) 9.6.24":                       9,
		"sh: 1: postgres: not found":                         0,
		"":                                                   0,
	} {
		if got := MajorOfVersionText(in); got != want {
			t.Errorf("MajorOfVersionText(%q) = %d, want %d", in, got, want)
		}
	}
	if got := BinVersionCommand("/usr/lib/postgresql/17/bin"); got != "/usr/lib/postgresql/17/bin/postgres --version" {
		t.Errorf("BinVersionCommand = %q", got)
	}
}
