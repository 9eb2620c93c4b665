package secret

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		known []string
		in    string
		gone  []string // must not appear in the output
		keep  []string // must still appear
	}{
		{name: "conninfo", in: "host=db1 port=5432 password=hunter22 user=app",
			gone: []string{"hunter22"}, keep: []string{"host=db1", "user=app", Mask}},
		{name: "quoted conninfo", in: "host=db1 password='pa ss word' dbname=x",
			gone: []string{"pa ss word"}, keep: []string{"dbname=x"}},
		{name: "spaces around =", in: "password = s3cret host=x", gone: []string{"s3cret"}, keep: []string{"host=x"}},
		{name: "url", in: "postgres://app:topsecret@db1:5432/app?sslmode=disable",
			gone: []string{"topsecret"}, keep: []string{"postgres://app:", "@db1:5432/app"}},
		{name: "pgpassword env", in: "PGPASSWORD=abc123xyz psql -h db1", gone: []string{"abc123xyz"}, keep: []string{"psql -h db1"}},
		{name: "known secret anywhere", known: []string{"longsecretvalue"}, in: "echo longsecretvalue | cmd",
			gone: []string{"longsecretvalue"}, keep: []string{"echo", "| cmd"}},
		{name: "short known values are not masked", known: []string{"ab"}, in: "table ab", keep: []string{"table ab"}},
		{name: "nothing to hide", in: "host=db1 user=app", keep: []string{"host=db1 user=app"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := &Redactor{}
			for _, k := range tt.known {
				r.Add(k)
			}
			got := r.Redact(tt.in)
			for _, g := range tt.gone {
				if strings.Contains(got, g) {
					t.Errorf("Redact(%q) = %q, still contains %q", tt.in, got, g)
				}
			}
			for _, k := range tt.keep {
				if !strings.Contains(got, k) {
					t.Errorf("Redact(%q) = %q, lost %q", tt.in, got, k)
				}
			}
		})
	}
}

func TestAddConninfoLearnsThePassword(t *testing.T) {
	t.Parallel()
	r := &Redactor{}
	r.AddConninfo("host=db1 password='w0rd with space'")
	r.AddConninfo("postgresql://u:urlpass99@h/db")
	// The learned secrets are masked even where no pattern would find them.
	got := r.Redact("error near w0rd with space and urlpass99")
	if strings.Contains(got, "w0rd with space") || strings.Contains(got, "urlpass99") {
		t.Fatalf("learned secrets leaked: %q", got)
	}
}

func TestNilRedactorStillMasksPatterns(t *testing.T) {
	t.Parallel()
	var r *Redactor
	if got := r.Redact("password=x1y2z3"); strings.Contains(got, "x1y2z3") {
		t.Fatalf("nil redactor leaked: %q", got)
	}
}

func TestLooksSecret(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{"db_password": true, "API_TOKEN": true, "pgpass": true, "candidate": false, "dir": false} {
		if got := LooksSecret(name); got != want {
			t.Errorf("LooksSecret(%q) = %v, want %v", name, got, want)
		}
	}
}
