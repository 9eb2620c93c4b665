package spec

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/switchover/switchover/checks"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/steps"
)

// kindDef is what this test needs of a check or a step definition.
type kindDef struct {
	kind  string
	specs []params.Spec
	build func(params.Values) (any, error)
}

// sampleRaw is a value parameter s accepts.
func sampleRaw(s params.Spec) params.Raw {
	if len(s.Enum) > 0 {
		return params.Raw{Scalar: s.Enum[0]}
	}
	switch s.Type {
	case params.Duration:
		return params.Raw{Scalar: "1s"}
	case params.Int:
		return params.Raw{Scalar: "1"}
	case params.Bool:
		return params.Raw{Scalar: "true"}
	case params.Bytes:
		return params.Raw{Scalar: "1kB"}
	case params.Strings:
		return params.Raw{List: []string{"x"}, IsList: true}
	}
	return params.Raw{Scalar: "true"}
}

// typedValues are the decoded values as the constructors read them.
func typedValues(specs []params.Spec, vals params.Values) map[string]any {
	m := map[string]any{}
	for _, s := range specs {
		if !vals.Has(s.Name) {
			continue
		}
		switch s.Type {
		case params.Duration:
			m[s.Name] = vals.Duration(s.Name)
		case params.Int, params.Bytes:
			m[s.Name] = vals.Int(s.Name)
		case params.Bool:
			m[s.Name] = vals.Bool(s.Name)
		case params.Strings, params.Nodes:
			m[s.Name] = vals.Strings(s.Name)
		default:
			m[s.Name] = vals.String(s.Name)
		}
	}
	return m
}

// stringsIn gathers the string and []string fields of the struct behind v.
func stringsIn(v any) []string {
	rv := reflect.Indirect(reflect.ValueOf(v))
	if rv.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for i := 0; i < rv.NumField(); i++ {
		f := rv.Field(i)
		switch {
		case f.Kind() == reflect.String:
			out = append(out, f.String())
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
			for j := 0; j < f.Len(); j++ {
				out = append(out, f.Index(j).String())
			}
		}
	}
	return out
}

// TestEveryKindTrimsNodeNames: a check or a step built from node
// parameters with blanks around them (as a programmatic caller may give
// them; the loader trims a node scalar itself) holds the bare names, the
// same in every constructor.
func TestEveryKindTrimsNodeNames(t *testing.T) {
	t.Parallel()
	var defs []kindDef
	for _, d := range checks.Kinds() {
		defs = append(defs, kindDef{"check " + d.Kind, d.Params, func(v params.Values) (any, error) { return d.New(v) }})
	}
	for _, d := range steps.Kinds() {
		defs = append(defs, kindDef{"step " + d.Kind, d.Params, func(v params.Values) (any, error) { return d.New(v) }})
	}
	tested := 0
	for _, d := range defs {
		raw := map[string]params.Raw{}
		var names []string // the node names given, in spec order
		for _, s := range d.specs {
			switch {
			case s.Type == params.Node:
				names = append(names, fmt.Sprintf("nd%d", len(names)+1))
				raw[s.Name] = params.Raw{Scalar: names[len(names)-1]}
			case s.Type == params.Nodes:
				names = append(names, fmt.Sprintf("nd%d", len(names)+1))
				raw[s.Name] = params.Raw{List: names[len(names)-1:], IsList: true}
			case s.Required || s.Type == params.Duration && s.Default == "":
				raw[s.Name] = sampleRaw(s)
			}
		}
		if len(names) == 0 {
			continue
		}
		t.Run(d.kind, func(t *testing.T) {
			vals, probs := params.Decode(d.specs, raw)
			if len(probs) > 0 {
				t.Fatalf("decode: %v", probs)
			}
			m := typedValues(d.specs, vals)
			i := 0
			for _, s := range d.specs {
				switch s.Type {
				case params.Node:
					m[s.Name] = "  " + names[i] + "\t"
				case params.Nodes:
					m[s.Name] = []string{" " + names[i] + " "}
				default:
					continue
				}
				i++
			}
			got, err := d.build(params.NewValues(m))
			if err != nil {
				t.Fatalf("new: %v", err)
			}
			fields := stringsIn(got)
			for _, f := range fields {
				if f != strings.TrimSpace(f) && strings.Contains(f, "nd") {
					t.Errorf("holds %q, untrimmed", f)
				}
			}
			for _, n := range names {
				if !slices.Contains(fields, n) {
					t.Errorf("holds no %q among %q", n, fields)
				}
			}
		})
		tested++
	}
	if tested < 20 {
		t.Errorf("only %d kinds with node parameters; the registries did not load", tested)
	}
}
