package logical

import (
	"strings"
	"testing"
)

// dumpOf renders a plain-format dump the way pg_dump writes one, from a
// preamble key and objects given as header + body.
func dumpOf(key string, objects ...[3]string) string {
	var b strings.Builder
	b.WriteString("--\n-- PostgreSQL database dump\n--\n\n\\restrict " + key + "\n\n-- Dumped from database version 15.18\n-- Dumped by pg_dump version 17.2\n\n")
	b.WriteString("SET statement_timeout = 0;\nSELECT pg_catalog.set_config('search_path', '', false);\n\n")
	for _, o := range objects {
		b.WriteString("--\n-- Name: " + o[0] + "; Type: " + o[1] + "; Schema: public; Owner: -\n--\n\n" + o[2] + "\n\n\n")
	}
	b.WriteString("--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict " + key + "\n")
	return b.String()
}

var (
	tableT  = [3]string{"t", "TABLE", "CREATE TABLE public.t (\n    id integer NOT NULL,\n    v text\n);"}
	tableT2 = [3]string{"t", "TABLE", "CREATE TABLE public.t (\n    id integer NOT NULL,\n    v text,\n    w integer\n);"}
	pkeyT   = [3]string{"t t_pkey", "CONSTRAINT", "ALTER TABLE ONLY public.t\n    ADD CONSTRAINT t_pkey PRIMARY KEY (id);"}
	tableU  = [3]string{"u", "TABLE", "CREATE TABLE public.u (\n    id integer\n);"}
)

func TestParseDump(t *testing.T) {
	t.Parallel()
	d := ParseDump(dumpOf("abc", tableT, pkeyT))
	if len(d.Objects) != 2 {
		t.Fatalf("objects = %d, want 2", len(d.Objects))
	}
	if got := d.Objects[1].Key(); got != "CONSTRAINT public.t t_pkey" {
		t.Errorf("key = %q", got)
	}
	if d.Objects[0].Lines[0] != "--" || !strings.HasPrefix(d.Objects[0].Lines[1], "-- Name: t;") {
		t.Errorf("an object opens with its header: %q", d.Objects[0].Lines[:2])
	}
}

func TestNormalizedDumpsOfTwoVersionsCompareEqual(t *testing.T) {
	t.Parallel()
	a := ParseDump(dumpOf("key1", tableT, pkeyT))
	b := ParseDump(strings.ReplaceAll(dumpOf("key2", tableT, pkeyT), "15.18", "17.2"))
	if d := Compare(Normalize(a), Normalize(b), "blue", "green"); !d.Empty() {
		t.Fatalf("differences in keys, versions or comments only: %+v", d)
	}
}

func TestCompareNamesObjects(t *testing.T) {
	t.Parallel()
	a := Normalize(ParseDump(dumpOf("k", tableT2, pkeyT, tableU)))
	b := Normalize(ParseDump(dumpOf("k", tableT, pkeyT)))
	d := Compare(a, b, "blue", "green")
	if d.Empty() {
		t.Fatal("no difference found")
	}
	if got, want := d.Summary("blue", "green"), "missing on green: TABLE public.u; defined differently on blue and green: TABLE public.t"; got != want {
		t.Errorf("summary\n got %s\nwant %s", got, want)
	}
	for _, want := range []string{"--- blue\n+++ green\n@@ line 3, TABLE public.t @@\n", "      id integer NOT NULL,\n-     v text,\n-     w integer\n", "+     v text\n"} {
		if !strings.Contains(d.Excerpt, want) {
			t.Errorf("excerpt lacks %q:\n%s", want, d.Excerpt)
		}
	}
}

func TestExcerptIsBounded(t *testing.T) {
	t.Parallel()
	var long []string
	for i := 0; i < 200; i++ {
		long = append(long, "    c"+strings.Repeat("x", i%7)+" integer,")
	}
	big := [3]string{"big", "TABLE", "CREATE TABLE public.big (\n" + strings.Join(long, "\n") + "\n    z integer\n);"}
	d := Compare(Normalize(ParseDump(dumpOf("k", big))), Normalize(ParseDump(dumpOf("k", tableU))), "blue", "green")
	if n := strings.Count(d.Excerpt, "\n"); n > 2*excerptLines+excerptContext+6 {
		t.Errorf("excerpt has %d lines:\n%s", n, d.Excerpt)
	}
	if !strings.Contains(d.Excerpt, "more lines]") {
		t.Errorf("excerpt does not say lines were left out:\n%s", d.Excerpt)
	}
}

func TestOursLeftOut(t *testing.T) {
	t.Parallel()
	text := dumpOf("k", tableT) + `
--
-- Name: switchover_ddl_guard; Type: EVENT TRIGGER; Schema: -; Owner: -
--

CREATE EVENT TRIGGER switchover_ddl_guard ON ddl_command_start
   EXECUTE FUNCTION switchover.ddl_guard();

--
-- Name: switchover_ddl_guard_end; Type: EVENT TRIGGER; Schema: -; Owner: -
--

CREATE EVENT TRIGGER switchover_ddl_guard_end ON ddl_command_end
   EXECUTE FUNCTION switchover.ddl_guard_end();
`
	d := ParseDump(text)
	r := d.Restorable()
	for _, bad := range []string{"EVENT TRIGGER", "\\restrict", "\\unrestrict"} {
		if strings.Contains(r, bad) {
			t.Errorf("restorable script holds %q:\n%s", bad, r)
		}
	}
	if !strings.Contains(r, "CREATE TABLE public.t") || !strings.Contains(r, "SET statement_timeout = 0;") {
		t.Errorf("restorable script lost the table or the preamble:\n%s", r)
	}
	if diff := Compare(Normalize(d), Normalize(ParseDump(dumpOf("k", tableT))), "blue", "green"); !diff.Empty() {
		t.Errorf("the guard counts in the comparison: %s", diff.Summary("blue", "green"))
	}
	if got := d.UserObjects(); len(got) != 1 || got[0] != "TABLE public.t" {
		t.Errorf("user objects = %v", got)
	}
}

func TestIdentityVerdict(t *testing.T) {
	t.Parallel()
	tables := []Table{
		{Schema: "public", Name: "pk", Kind: 'r', Identity: 'd', PrimaryKey: true},
		{Schema: "public", Name: "idx", Kind: 'r', Identity: 'i'},
		{Schema: "public", Name: "wide", Kind: 'r', Identity: 'f'},
		{Schema: "public", Name: "nokey", Kind: 'r', Identity: 'd'},
		{Schema: "public", Name: "nothing", Kind: 'r', Identity: 'n', PrimaryKey: true},
		{Schema: "public", Name: "parent", Kind: 'p', Identity: 'd'},
	}
	refused, full := IdentityVerdict(tables, false)
	if want := "public.wide (REPLICA IDENTITY FULL), public.nokey (no primary key, no replica identity index), public.nothing (REPLICA IDENTITY NOTHING)"; strings.Join(refused, ", ") != want || len(full) != 0 {
		t.Errorf("without allow_full: refused %v, full %v", refused, full)
	}
	refused, full = IdentityVerdict(tables, true)
	if len(refused) != 1 || refused[0] != "public.nothing (REPLICA IDENTITY NOTHING)" || len(full) != 2 {
		t.Errorf("with allow_full: refused %v, full %v", refused, full)
	}
	if w := WithoutIdentity(tables); len(w) != 1 || w[0].Name != "nokey" {
		t.Errorf("without identity = %v", w)
	}
}

func TestPublishedTables(t *testing.T) {
	t.Parallel()
	tables := []Table{
		{Schema: "public", Name: "a", Kind: 'r'},
		{Schema: "public", Name: "logs", Kind: 'r', Unlogged: true},
		{Schema: "public", Name: "m", Kind: 'p'},
		{Schema: "public", Name: "m1", Kind: 'r', Partition: true},
		{Schema: "Sales", Name: "Orders", Kind: 'r'},
	}
	if got := strings.Join(PublishedTables(tables, 150000), " "); got != `public.a public.m "Sales"."Orders"` {
		t.Errorf("15: %s", got)
	}
	if got := strings.Join(PublishedTables(tables, 120000), " "); got != `public.a public.m1 "Sales"."Orders"` {
		t.Errorf("12: %s", got)
	}
}

func TestCapacity(t *testing.T) {
	t.Parallel()
	c := Capacity{WALLevel: "replica", MaxReplicationSlots: 2, UsedSlots: 2, MaxWALSenders: 10, UsedWALSenders: 1,
		MaxLogicalWorkers: 4, MaxWorkerProcesses: 4, MaxSyncWorkers: 2, UsedBackgroundWorker: 2}
	pub := strings.Join(c.PublisherProblems(1), "\n")
	for _, want := range []string{"wal_level is replica", "a restart", "0 of max_replication_slots = 2 are free"} {
		if !strings.Contains(pub, want) {
			t.Errorf("publisher problems lack %q: %s", want, pub)
		}
	}
	if sub := strings.Join(c.SubscriberProblems(1), "\n"); !strings.Contains(sub, "2 of max_worker_processes = 4 are free, 3 wanted") {
		t.Errorf("subscriber problems: %s", sub)
	}
	ok := Capacity{WALLevel: "logical", MaxReplicationSlots: 10, MaxWALSenders: 10, MaxLogicalWorkers: 4, MaxWorkerProcesses: 8, MaxSyncWorkers: 2, UsedBackgroundWorker: 1}
	if p := append(ok.PublisherProblems(1), ok.SubscriberProblems(1)...); len(p) > 0 {
		t.Errorf("problems of a ready node: %v", p)
	}
}

func TestCreateSubscriptionSQL(t *testing.T) {
	t.Parallel()
	o := SubscribeOptions{Name: "blue_to_green", Conninfo: "host=10.0.0.1 port=5432 user=repl dbname=app", Publication: "upgrade", CopyData: true, Version: 150000}
	want := "CREATE SUBSCRIPTION blue_to_green CONNECTION 'host=10.0.0.1 port=5432 user=repl dbname=app' PUBLICATION upgrade WITH (copy_data = true, create_slot = true, enabled = true, streaming = off)"
	if got := CreateSubscriptionSQL(o); got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
	o.Version, o.CopyData, o.SynchronousCommit = 130000, false, "local"
	if got := CreateSubscriptionSQL(o); strings.Contains(got, "streaming") || !strings.Contains(got, "copy_data = false") || !strings.HasSuffix(got, "synchronous_commit = 'local')") {
		t.Errorf("13: %s", got)
	}
}

func TestIdent(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"orders": "orders", "Orders": `"Orders"`, "user": `"user"`, "a b": `"a b"`, `x"y`: `"x""y"`, "t1_x": "t1_x", "1t": `"1t"`} {
		if got := Ident(in); got != want {
			t.Errorf("Ident(%q) = %s, want %s", in, got, want)
		}
	}
}
