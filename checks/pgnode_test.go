package checks

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestMatchesEndpoint(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 0)
	if !matchesEndpoint(ctx, "localhost:5432", []string{"10.0.0.5:5432", "127.0.0.1:5432"}) {
		t.Error("matchesEndpoint missed the second endpoint")
	}
	if matchesEndpoint(ctx, "", []string{"127.0.0.1:5432"}) {
		t.Error("matchesEndpoint matched an empty address")
	}
}

func TestConninfoEndpoints(t *testing.T) {
	t.Parallel()
	eps, err := conninfoEndpoints("host=db1 port=5433 user=x password=secret")
	if err != nil || strings.Join(eps, " ") != "db1:5433" {
		t.Errorf("conninfoEndpoints = %v, %v; want db1:5433", eps, err)
	}
	if _, err := conninfoEndpoints("host=db1,db2 port=5432,5433 user=x password=secret"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("conninfoEndpoints of two servers: %v; want an error without the password", err)
	}
	if _, err := conninfoEndpoints("host='unterminated password=secret"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("conninfoEndpoints of a bad string: %v; want an error without the password", err)
	}
}

func TestVersionText(t *testing.T) {
	t.Parallel()
	for num, want := range map[int][2]string{150008: {"15.8", "15"}, 100023: {"10.23", "10"}, 90624: {"9.6.24", "9.6"}, 170000: {"17.0", "17"}} {
		if got := [2]string{serverVersion(num), majorVersion(num)}; got != want {
			t.Errorf("version text of %d = %v, want %v", num, got, want)
		}
	}
}

func TestDedupeAndDescribeNodes(t *testing.T) {
	t.Parallel()
	got := dedupe([]string{" pg1", "pg2", "", "pg1 ", "pg3", "pg2"})
	if strings.Join(got, ",") != "pg1,pg2,pg3" {
		t.Errorf("dedupe = %q, want pg1, pg2, pg3", got)
	}
	if got := describeNodes(nil); got != "all nodes" {
		t.Errorf("describeNodes(nil) = %q", got)
	}
	if got := describeNodes([]string{"pg1", "pg2"}); got != "pg1, pg2" {
		t.Errorf("describeNodes = %q", got)
	}
}

// A node with no free connection slot refuses every check alike: the
// refusal names the node's state, not the check that met it first.
func TestConnProblemNoFreeSlot(t *testing.T) {
	err := fmt.Errorf("connect: %w", &pgconn.PgError{Code: "53300", Message: "sorry, too many clients already"})
	got := connProblem(context.Background(), err)
	for _, want := range []string{"the node refuses every new connection: sorry, too many clients already (SQLSTATE 53300)", "no connection slot is free", "this check could not look"} {
		if !strings.Contains(got, want) {
			t.Errorf("connProblem = %q, want it to say %q", got, want)
		}
	}
	other := connProblem(context.Background(), &pgconn.PgError{Code: "28P01", Message: "password authentication failed for user \"app\""})
	if strings.Contains(other, "connection slot") {
		t.Errorf("an authentication failure is worded as a full node: %q", other)
	}
}
