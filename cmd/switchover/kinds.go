package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/switchover/switchover/checks"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/steps"
)

// kindDoc is one registered check or step kind, as `checks` and `steps` show it.
type kindDoc struct {
	Kind        string     `json:"kind"`
	Doc         string     `json:"doc"`
	Destructive bool       `json:"destructive,omitempty"`
	Params      []paramDoc `json:"params"`
}

type paramDoc struct {
	Name     string   `json:"name"`
	Type     string   `json:"type"`
	Required bool     `json:"required,omitempty"`
	Default  string   `json:"default,omitempty"`
	Enum     []string `json:"enum,omitempty"`
	Doc      string   `json:"doc"`
}

func docParams(specs []params.Spec) []paramDoc {
	out := []paramDoc{}
	for _, s := range specs {
		out = append(out, paramDoc{Name: s.Name, Type: s.Type.String(), Required: s.Required, Default: s.Default, Enum: s.Enum, Doc: s.Doc})
	}
	return out
}

func newChecksCmd(io *streams) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "checks",
		Short: "List the check kinds (for requires and ensures) with their parameters",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			var docs []kindDoc
			for _, d := range checks.Kinds() {
				docs = append(docs, kindDoc{Kind: d.Kind, Doc: d.Doc, Params: docParams(d.Params)})
			}
			return printKinds(io.out, docs, asJSON, "every check also takes: within (poll until it passes, up to this long), every (between polls), timeout (one evaluation)")
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func newStepsCmd(io *streams) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "steps",
		Short: "List the action kinds a step can take, with their parameters",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			var docs []kindDoc
			for _, d := range steps.Kinds() {
				docs = append(docs, kindDoc{Kind: d.Kind, Doc: d.Doc, Destructive: d.Destructive, Params: docParams(d.Params)})
			}
			return printKinds(io.out, docs, asJSON, "")
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func printKinds(w io.Writer, docs []kindDoc, asJSON bool, footer string) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(docs)
	}
	for i, d := range docs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		mark := ""
		if d.Destructive {
			mark = " (always destructive)"
		}
		fmt.Fprintf(w, "%s%s\n  %s\n", d.Kind, mark, d.Doc)
		for _, p := range d.Params {
			var attrs []string
			attrs = append(attrs, p.Type)
			if p.Required {
				attrs = append(attrs, "required")
			}
			if p.Default != "" {
				attrs = append(attrs, "default "+p.Default)
			}
			if len(p.Enum) > 0 {
				attrs = append(attrs, "one of "+strings.Join(p.Enum, "|"))
			}
			fmt.Fprintf(w, "    %-12s %s: %s\n", p.Name, strings.Join(attrs, ", "), p.Doc)
		}
	}
	if footer != "" {
		fmt.Fprintf(w, "\n%s\n", footer)
	}
	return nil
}
