package steps

import (
	"testing"
)

func TestFollowPrimaryConninfo(t *testing.T) {
	t.Parallel()
	var p printed
	tg := p.target(pgInventory())
	tests := []struct {
		name string
		raw  map[string]string
		want string
	}{
		{name: "from a keyword/value conninfo", raw: map[string]string{"node": "pg2", "upstream": "pg1"},
			want: "host=10.0.0.1 port=5432 user=repl sslmode=prefer application_name=pg2"},
		{name: "from a URL, its application_name replaced", raw: map[string]string{"node": "pg1", "upstream": "pg2"},
			want: "host=10.0.0.2 port=5433 user=repl sslmode=require application_name=pg1"},
		{name: "given", raw: map[string]string{"node": "pg1", "upstream": "pg2", "conninfo": "service=repl"},
			want: "service=repl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := build(t, "pg.follow", tt.raw).(*PGFollow)
			got, err := f.primaryConninfo(tg)
			if err != nil || got != tt.want {
				t.Errorf("primaryConninfo = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	f := build(t, "pg.follow", map[string]string{"node": "pg1", "upstream": "pg2"}).(*PGFollow)
	if f.Slot != "pg1" {
		t.Errorf("default slot = %q, want the node's name", f.Slot)
	}
	f = build(t, "pg.follow", map[string]string{"node": "pg1", "upstream": "pg2", "slot": ""}).(*PGFollow)
	if f.Slot != "" {
		t.Errorf(`slot "" = %q, want none`, f.Slot)
	}
}

func TestPgNewRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		kind    string
		raw     map[string]string
		wantErr string
	}{
		{name: "sql without sql", kind: "pg.sql", raw: map[string]string{"node": "pg1"}, wantErr: `missing required parameter "sql"`},
		{name: "sql blank", kind: "pg.sql", raw: map[string]string{"node": "pg1", "sql": " \n"}, wantErr: `parameter "sql" is empty`},
		{name: "checkpoint without node", kind: "pg.checkpoint", raw: map[string]string{}, wantErr: `missing required parameter "node"`},
		{name: "stop with a bad mode", kind: "pg.stop", raw: map[string]string{"node": "pg1", "mode": "immediate"}, wantErr: "want one of fast, smart"},
		{name: "follow itself", kind: "pg.follow", raw: map[string]string{"node": "pg1", "upstream": "pg1"}, wantErr: `node "pg1" cannot follow itself`},
		{name: "follow without upstream", kind: "pg.follow", raw: map[string]string{"node": "pg1"}, wantErr: `missing required parameter "upstream"`},
		{name: "follow with a bad slot name", kind: "pg.follow", raw: map[string]string{"node": "pg-1", "upstream": "pg2"}, wantErr: `slot "pg-1"`},
		{name: "rewind from itself", kind: "pg.rewind", raw: map[string]string{"node": "pg1", "source": "pg1"}, wantErr: "cannot be rewound from itself"},
		{name: "rewind keeping a path", kind: "pg.rewind", raw: map[string]string{"node": "pg1", "source": "pg2", "keep_config": "../etc/passwd"}, wantErr: "without a /"},
		{name: "pause without a wait", kind: "pgbouncer.pause", raw: map[string]string{"max_wait": "0s"}, wantErr: `"max_wait" must be more than 0`},
		{name: "repoint without to", kind: "pgbouncer.repoint", raw: map[string]string{}, wantErr: `missing required parameter "to"`},
		{name: "resume takes nothing", kind: "pgbouncer.resume", raw: map[string]string{"database": "app"}, wantErr: "it takes no parameters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := tryBuild(tt.kind, tt.raw)
			wantErr(t, err, tt.wantErr)
		})
	}
}
