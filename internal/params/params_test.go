package params

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func scalar(s string) Raw  { return Raw{Scalar: s} }
func list(s ...string) Raw { return Raw{List: s, IsList: true} }

// msgs renders problems one a line, for failure messages.
func msgs(probs []Problem) string {
	out := make([]string, len(probs))
	for i, p := range probs {
		out[i] = p.Param + ": " + p.Msg
	}
	return strings.Join(out, "\n")
}

func TestDecodeConversions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		spec    Spec
		raw     Raw
		want    any    // the decoded value; ignored when wantErr is set
		wantErr string // substring of the one problem expected
	}{
		{name: "string kept as given", spec: Spec{Name: "p", Type: String}, raw: scalar(" select 1; "), want: " select 1; "},
		{name: "string from a list", spec: Spec{Name: "p", Type: String}, raw: list("a"), wantErr: `want a string, got a list`},
		{name: "duration", spec: Spec{Name: "p", Type: Duration}, raw: scalar(" 1m30s "), want: 90 * time.Second},
		{name: "duration zero", spec: Spec{Name: "p", Type: Duration}, raw: scalar("0s"), want: time.Duration(0)},
		{name: "duration without unit", spec: Spec{Name: "p", Type: Duration}, raw: scalar("30"), wantErr: `want a duration such as 500ms, 30s or 5m, got "30"`},
		{name: "duration negative", spec: Spec{Name: "p", Type: Duration}, raw: scalar("-5s"), wantErr: `want a positive duration, got "-5s"`},
		{name: "int", spec: Spec{Name: "p", Type: Int}, raw: scalar("42"), want: int64(42)},
		{name: "int negative", spec: Spec{Name: "p", Type: Int}, raw: scalar("-7"), want: int64(-7)},
		{name: "int not a number", spec: Spec{Name: "p", Type: Int}, raw: scalar("4.5"), wantErr: `want a whole number, got "4.5"`},
		{name: "int too large", spec: Spec{Name: "p", Type: Int}, raw: scalar("99999999999999999999"), wantErr: `want a whole number`},
		{name: "bool true", spec: Spec{Name: "p", Type: Bool}, raw: scalar("true"), want: true},
		{name: "bool false", spec: Spec{Name: "p", Type: Bool}, raw: scalar("false"), want: false},
		{name: "bool bad", spec: Spec{Name: "p", Type: Bool}, raw: scalar("yes please"), wantErr: `want true or false, got "yes please"`},
		{name: "bool from a list", spec: Spec{Name: "p", Type: Bool}, raw: list("true"), wantErr: `want a bool, got a list`},
		{name: "strings from a scalar", spec: Spec{Name: "p", Type: Strings}, raw: scalar("pg1"), want: []string{"pg1"}},
		{name: "strings from a list", spec: Spec{Name: "p", Type: Strings}, raw: list("pg1", "pg2"), want: []string{"pg1", "pg2"}},
		{name: "strings from an empty list", spec: Spec{Name: "p", Type: Strings}, raw: list(), want: []string(nil)},
		{name: "bytes plain", spec: Spec{Name: "p", Type: Bytes}, raw: scalar("1048576"), want: int64(1048576)},
		{name: "bytes B", spec: Spec{Name: "p", Type: Bytes}, raw: scalar("512B"), want: int64(512)},
		{name: "bytes kB", spec: Spec{Name: "p", Type: Bytes}, raw: scalar("512kB"), want: int64(512 << 10)},
		{name: "bytes KB", spec: Spec{Name: "p", Type: Bytes}, raw: scalar("2KB"), want: int64(2 << 10)},
		{name: "bytes MB", spec: Spec{Name: "p", Type: Bytes}, raw: scalar("16MB"), want: int64(16 << 20)},
		{name: "bytes GB with a space", spec: Spec{Name: "p", Type: Bytes}, raw: scalar("1 GB"), want: int64(1 << 30)},
		{name: "bytes TB", spec: Spec{Name: "p", Type: Bytes}, raw: scalar("3TB"), want: int64(3 << 40)},
		{name: "bytes bad unit", spec: Spec{Name: "p", Type: Bytes}, raw: scalar("16XB"), wantErr: `want a size such as 16MB, 512kB or 1048576, got "16XB"`},
		{name: "bytes negative", spec: Spec{Name: "p", Type: Bytes}, raw: scalar("-1MB"), wantErr: `want a size`},
		{name: "bytes unit only", spec: Spec{Name: "p", Type: Bytes}, raw: scalar("MB"), wantErr: `want a size`},
		{name: "bytes overflow", spec: Spec{Name: "p", Type: Bytes}, raw: scalar("9000000TB"), wantErr: `size "9000000TB" is too large`},
		{name: "enum allowed", spec: Spec{Name: "p", Type: String, Enum: []string{"fast", "smart"}}, raw: scalar("smart"), want: "smart"},
		{name: "enum trimmed", spec: Spec{Name: "p", Type: String, Enum: []string{"fast", "smart"}}, raw: scalar(" fast "), want: "fast"},
		{name: "enum not allowed", spec: Spec{Name: "p", Type: String, Enum: []string{"fast", "smart"}}, raw: scalar("immediate"), wantErr: `want one of fast, smart, got "immediate"`},
		{name: "enum on strings allowed", spec: Spec{Name: "p", Type: Strings, Enum: []string{"a", "b"}}, raw: list("b", "a"), want: []string{"b", "a"}},
		{name: "enum on strings not allowed", spec: Spec{Name: "p", Type: Strings, Enum: []string{"a", "b"}}, raw: list("a", "c"), wantErr: `want each of a, b, got "c"`},
		{name: "unknown type", spec: Spec{Name: "p"}, raw: scalar("x"), wantErr: `parameter type unknown cannot be decoded`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, probs := Decode([]Spec{tt.spec}, map[string]Raw{"p": tt.raw})
			if tt.wantErr != "" {
				if len(probs) != 1 {
					t.Fatalf("got problems %q, want exactly one containing %q", msgs(probs), tt.wantErr)
				}
				if probs[0].Param != "p" || !strings.Contains(probs[0].Msg, tt.wantErr) || !strings.HasPrefix(probs[0].Msg, `parameter "p": `) {
					t.Errorf("problem = %+v, want param p and a message containing %q", probs[0], tt.wantErr)
				}
				if v.Has("p") {
					t.Errorf("a rejected value was kept: %v", v.Map()["p"])
				}
				return
			}
			if len(probs) > 0 {
				t.Fatalf("unexpected problems:\n%s", msgs(probs))
			}
			if got := v.Map()["p"]; tt.spec.Type != Duration && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decoded %#v, want %#v", got, tt.want)
			}
			var got any
			switch tt.spec.Type {
			case String:
				got = v.String("p")
			case Duration:
				got = v.Duration("p")
			case Int, Bytes:
				got = v.Int("p")
			case Bool:
				got = v.Bool("p")
			case Strings:
				got = v.Strings("p")
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("typed accessor returned %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestDecodeProblems(t *testing.T) {
	t.Parallel()
	specs := []Spec{
		{Name: "command", Type: String, Required: true},
		{Name: "timeout", Type: Duration, Default: "30s"},
		{Name: "node", Type: String},
	}
	tests := []struct {
		name  string
		specs []Spec
		raw   map[string]Raw
		want  []Problem
	}{
		{
			name:  "unknown parameter with a suggestion",
			specs: specs,
			raw:   map[string]Raw{"command": scalar("true"), "timeuot": scalar("1s")},
			want:  []Problem{{Param: "timeuot", Msg: `unknown parameter "timeuot" (did you mean "timeout"?)`}},
		},
		{
			name:  "unknown parameter without a close match",
			specs: specs,
			raw:   map[string]Raw{"command": scalar("true"), "xyzzy": scalar("1")},
			want:  []Problem{{Param: "xyzzy", Msg: `unknown parameter "xyzzy" (expected one of: command, timeout, node)`}},
		},
		{
			name:  "parameter to a kind that takes none",
			specs: nil,
			raw:   map[string]Raw{"node": scalar("pg1")},
			want:  []Problem{{Param: "node", Msg: `unknown parameter "node" (it takes no parameters)`}},
		},
		{
			name:  "required missing",
			specs: specs,
			raw:   map[string]Raw{},
			want:  []Problem{{Msg: `missing required parameter "command" (string)`}},
		},
		{
			name:  "every problem, not only the first",
			specs: specs,
			raw:   map[string]Raw{"timeout": scalar("soon"), "nodes": scalar("pg1"), "comand": scalar("true")},
			want: []Problem{
				{Param: "comand", Msg: `unknown parameter "comand" (did you mean "command"?)`},
				{Param: "nodes", Msg: `unknown parameter "nodes" (did you mean "node"?)`},
				{Param: "timeout", Msg: `parameter "timeout": want a duration such as 500ms, 30s or 5m, got "soon"`},
				{Msg: `missing required parameter "command" (string)`},
			},
		},
		{
			name:  "none",
			specs: specs,
			raw:   map[string]Raw{"command": scalar("true"), "node": scalar("pg1")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, probs := Decode(tt.specs, tt.raw)
			if !reflect.DeepEqual(probs, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", msgs(probs), msgs(tt.want))
			}
		})
	}
}

func TestDecodeDefaults(t *testing.T) {
	t.Parallel()
	specs := []Spec{
		{Name: "timeout", Type: Duration, Default: "30s"},
		{Name: "limit", Type: Bytes, Default: "16MB"},
		{Name: "mode", Type: String, Default: "fast", Enum: []string{"fast", "smart"}},
		{Name: "nodes", Type: Strings, Default: "pg1"},
		{Name: "force", Type: Bool},
		{Name: "retries", Type: Int},
	}
	tests := []struct {
		name string
		raw  map[string]Raw
		want map[string]any
	}{
		{
			name: "defaults fill what is missing",
			raw:  map[string]Raw{},
			want: map[string]any{"timeout": "30s", "limit": int64(16 << 20), "mode": "fast", "nodes": []string{"pg1"}},
		},
		{
			name: "given values win over defaults",
			raw:  map[string]Raw{"timeout": scalar("5s"), "mode": scalar("smart"), "force": scalar("true")},
			want: map[string]any{"timeout": "5s", "limit": int64(16 << 20), "mode": "smart", "nodes": []string{"pg1"}, "force": true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, probs := Decode(specs, tt.raw)
			if len(probs) > 0 {
				t.Fatalf("unexpected problems:\n%s", msgs(probs))
			}
			if got := v.Map(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Map() = %#v, want %#v", got, tt.want)
			}
			// Optional parameters without a default read as their zero value.
			if v.Has("retries") || v.Int("retries") != 0 {
				t.Errorf("retries: Has = %v, Int = %d; want absent and 0", v.Has("retries"), v.Int("retries"))
			}
		})
	}
}

func TestDecodeBadDefaultPanics(t *testing.T) {
	t.Parallel()
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), `bad default for "timeout"`) {
			t.Errorf("recover() = %v, want a panic about the bad default", r)
		}
	}()
	Decode([]Spec{{Name: "timeout", Type: Duration, Default: "soon"}}, nil)
}

func TestDecodeCopiesLists(t *testing.T) {
	t.Parallel()
	in := []string{"pg1", "pg2"}
	v, probs := Decode([]Spec{{Name: "nodes", Type: Strings}}, map[string]Raw{"nodes": {List: in, IsList: true}})
	if len(probs) > 0 {
		t.Fatalf("unexpected problems:\n%s", msgs(probs))
	}
	in[0] = "changed"
	if got := v.Strings("nodes"); got[0] != "pg1" {
		t.Errorf("decoded list shares memory with the raw one: %q", got)
	}
}

func TestSuggest(t *testing.T) {
	t.Parallel()
	candidates := []string{"command", "node", "timeout", "for"}
	tests := []struct {
		s    string
		want string
	}{
		{s: "comand", want: "command"},
		{s: "commnad", want: "command"},
		{s: "nodes", want: "node"},
		{s: "Node", want: "node"},
		{s: "timout", want: "timeout"},
		{s: "fro", want: "for"},
		{s: "command", want: "command"},
		{s: "password", want: ""},
		{s: "datadir", want: ""},
		{s: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.s, func(t *testing.T) {
			t.Parallel()
			if got := Suggest(tt.s, candidates); got != tt.want {
				t.Errorf("Suggest(%q) = %q, want %q", tt.s, got, tt.want)
			}
		})
	}
	if got := Suggest("comand", nil); got != "" {
		t.Errorf("Suggest without candidates = %q, want empty", got)
	}
}

func TestTypeString(t *testing.T) {
	t.Parallel()
	want := map[Type]string{Unknown: "unknown", String: "string", Duration: "duration", Int: "int", Bool: "bool", Strings: "list of strings", Bytes: "size"}
	for typ, s := range want {
		if got := typ.String(); got != s {
			t.Errorf("Type(%d).String() = %q, want %q", typ, got, s)
		}
	}
}

// FormatBytes writes what ParseBytes reads back to the same number.
func TestFormatBytes(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{16 << 20: "16MB", 512 << 10: "512kB", 3 << 40: "3TB", 1: "1 byte", 184: "184 bytes", 0: "0 bytes", 1<<20 + 1: "1048577 bytes"} {
		got := FormatBytes(n)
		if got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
		if back, err := ParseBytes(strings.TrimSuffix(strings.TrimSuffix(got, " bytes"), " byte")); err != nil || back != n {
			t.Errorf("ParseBytes(FormatBytes(%d) = %q) = %d, %v", n, got, back, err)
		}
	}
}

func TestNodeAccessorsTrim(t *testing.T) {
	t.Parallel()
	v := NewValues(map[string]any{
		"node":  " pg1\t",
		"nodes": []string{"pg1", "  pg2 ", ""},
	})
	if got := v.Node("node"); got != "pg1" {
		t.Errorf("Node = %q, want pg1", got)
	}
	if got := v.Node("missing"); got != "" {
		t.Errorf("Node of a missing parameter = %q, want \"\"", got)
	}
	if got, want := v.Nodes("nodes"), []string{"pg1", "pg2", ""}; !reflect.DeepEqual(got, want) {
		t.Errorf("Nodes = %q, want %q", got, want)
	}
	if got := v.Nodes("missing"); got != nil {
		t.Errorf("Nodes of a missing parameter = %q, want nil", got)
	}
}
