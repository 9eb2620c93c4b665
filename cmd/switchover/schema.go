package main

import (
	"encoding/json"

	"github.com/spf13/cobra"

	"github.com/switchover/switchover/checks"
	"github.com/switchover/switchover/internal/kinds"
	"github.com/switchover/switchover/internal/params"
	"github.com/switchover/switchover/steps"
)

func newSchemaCmd(io *streams) *cobra.Command {
	return &cobra.Command{
		Use:   "schema [runbook|inventory|fleet]",
		Short: "Print the JSON Schema of runbooks (default), inventories or fleet files, for editors",
		Long: `Schema prints a JSON Schema (draft-07) generated from the registered checks and steps, so an
editor's YAML support completes and checks runbooks as you type. With the YAML language
server, put the schema in a file and name it on the runbook's first line:

  switchover schema > switchover-runbook.schema.json
  switchover schema inventory > switchover-inventory.schema.json
  switchover schema fleet > switchover-fleet.schema.json
  # yaml-language-server: $schema=./switchover-runbook.schema.json

'switchover validate' remains the authority: it also checks variables, nodes and the flow
between steps, which a schema cannot.`,
		Args:      maxArgs(1, "runbook, inventory or fleet"),
		ValidArgs: []string{"runbook", "inventory", "fleet"},
		RunE: func(c *cobra.Command, args []string) error {
			which := "runbook"
			if len(args) == 1 {
				which = args[0]
			}
			var s map[string]any
			switch which {
			case "runbook":
				s = runbookSchema()
			case "inventory":
				s = inventorySchema()
			case "fleet":
				s = fleetSchema()
			default:
				return usagef("schema %q: want runbook, inventory or fleet", which)
			}
			enc := json.NewEncoder(io.out)
			enc.SetIndent("", "  ")
			return enc.Encode(s)
		},
	}
}

type obj = map[string]any

// varRef accepts a value written as a ${variable} reference, whatever the
// parameter's type: variables are substituted before types are checked.
var varRef = obj{"type": "string", "pattern": `\$\{`}

func paramSchema(p params.Spec) obj {
	var s obj
	switch p.Type {
	case params.Int:
		s = obj{"anyOf": []any{obj{"type": "integer"}, varRef}}
	case params.Bool:
		s = obj{"anyOf": []any{obj{"type": "boolean"}, varRef}}
	case params.Duration:
		s = obj{"type": "string", "pattern": `^(\$\{.*\}|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$`}
	case params.Bytes:
		s = obj{"anyOf": []any{obj{"type": "integer"}, obj{"type": "string", "pattern": `^([0-9]+ ?(B|kB|KB|MB|GB|TB)?|.*\$\{.*)$`}}}
	case params.Strings, params.Nodes:
		s = obj{"anyOf": []any{obj{"type": "array", "items": obj{"type": "string"}}, obj{"type": "string"}}}
	default:
		s = obj{"type": "string"}
		if len(p.Enum) > 0 {
			s = obj{"anyOf": []any{obj{"enum": p.Enum}, varRef}}
		}
	}
	s["description"] = p.Doc
	if p.Default != "" {
		s["default"] = p.Default
	}
	return s
}

// kindSchema is `kind: {params}`: an object with one key.
func kindSchema(kind, doc string, specs []params.Spec, extra map[string]obj) obj {
	props := obj{}
	var required []string
	for _, p := range specs {
		props[p.Name] = paramSchema(p)
		if p.Required {
			required = append(required, p.Name)
		}
	}
	for k, v := range extra {
		props[k] = v
	}
	inner := obj{"type": "object", "additionalProperties": false, "properties": props}
	if len(required) > 0 {
		inner["required"] = required
	} else {
		inner = obj{"anyOf": []any{inner, obj{"type": "null"}}}
	}
	inner["description"] = doc
	return obj{"type": "object", "additionalProperties": false, "required": []string{kind},
		"properties": obj{kind: inner}, "description": doc}
}

func runbookSchema() obj {
	duration := obj{"type": "string", "description": "a duration such as 500ms, 30s or 5m, or a ${variable}"}
	engine := map[string]obj{}
	for _, p := range kinds.CheckEngineParams {
		engine[p.Name] = obj{"type": "string", "description": p.Doc}
	}
	var checkKinds, stepKinds []any
	for _, d := range checks.Kinds() {
		checkKinds = append(checkKinds, kindSchema(d.Kind, d.Doc, d.Params, engine))
	}
	for _, d := range steps.Kinds() {
		stepKinds = append(stepKinds, kindSchema(d.Kind, d.Doc, d.Params, nil))
	}
	name := obj{"type": "string", "pattern": `^[a-z0-9][a-z0-9_.-]*$`}
	stepList := obj{"type": "array", "items": obj{"$ref": "#/definitions/step"}}
	sections := obj{"type": "object", "additionalProperties": stepList}
	return obj{
		"$schema":              "http://json-schema.org/draft-07/schema#",
		"$id":                  "https://switchover/runbook.schema.json",
		"title":                "switchover runbook",
		"type":                 "object",
		"additionalProperties": false,
		"required":             []string{"name", "steps"},
		"properties": obj{
			"name":        name,
			"description": obj{"type": "string"},
			"vars": obj{"type": "object", "description": "variables and their defaults; ~ means it must be given",
				"additionalProperties": obj{"type": []string{"string", "number", "boolean", "null"}}},
			"defaults": obj{"type": "object", "additionalProperties": false, "properties": obj{
				"timeout": duration, "check_timeout": duration, "poll_interval": duration,
				"on_failure": obj{"type": "string", "description": "rollback section for steps before the point of no return"},
			}},
			"steps":    obj{"type": "array", "minItems": 1, "items": obj{"$ref": "#/definitions/step"}},
			"rollback": sections,
			"repair":   sections,
			"finally":  stepList,
		},
		"definitions": obj{
			"step": obj{
				"type": "object", "additionalProperties": false, "required": []string{"name"},
				"properties": obj{
					"name":               name,
					"description":        obj{"type": "string"},
					"requires":           obj{"type": "array", "items": obj{"$ref": "#/definitions/check"}},
					"ensures":            obj{"type": "array", "items": obj{"$ref": "#/definitions/check"}},
					"action":             obj{"$ref": "#/definitions/action"},
					"destructive":        obj{"type": "boolean"},
					"idempotent":         obj{"type": "boolean"},
					"point_of_no_return": obj{"type": "boolean"},
					"approve_with": obj{"type": "array", "items": obj{"type": "string"},
						"description": "later destructive steps approved together with this one, at a terminal"},
					"timeout":    duration,
					"on_failure": obj{"type": "string", "description": "a rollback or repair section, or stop"},
				},
			},
			"check":  obj{"oneOf": checkKinds},
			"action": obj{"oneOf": stepKinds},
		},
	}
}

func inventorySchema() obj {
	host := obj{"anyOf": []any{
		obj{"enum": []string{"local"}},
		obj{"type": "object", "additionalProperties": false, "required": []string{"transport"}, "properties": obj{
			"transport":  obj{"enum": []string{"local", "ssh"}},
			"address":    obj{"type": "string", "description": "for ssh: [user@]host[:port]"},
			"user":       obj{"type": "string", "description": "run commands as this OS user"},
			"ssh_config": obj{"type": "string", "description": "an ssh client configuration file"},
		}},
	}}
	node := obj{"type": "object", "additionalProperties": false, "required": []string{"conninfo"}, "properties": obj{
		"conninfo": obj{"type": "string", "description": "libpq connection string or URL"},
		"host":     host,
		"data_dir": obj{"type": "string"},
		"bin_dir":  obj{"type": "string"},
	}}
	return obj{
		"$schema":              "http://json-schema.org/draft-07/schema#",
		"$id":                  "https://switchover/inventory.schema.json",
		"title":                "switchover inventory",
		"type":                 "object",
		"additionalProperties": false,
		"required":             []string{"cluster", "nodes"},
		"not":                  obj{"required": []string{"pooler", "poolers"}},
		"properties": obj{
			"cluster": obj{"type": "string", "pattern": `^[a-z0-9][a-z0-9_.-]*$`},
			"vars":    obj{"type": "object", "additionalProperties": obj{"type": []string{"string", "number", "boolean", "null"}}},
			"nodes":   obj{"type": "object", "minProperties": 1, "additionalProperties": node},
			"green": obj{"type": "object", "additionalProperties": false, "required": []string{"nodes"},
				"description": "the target cluster of a blue/green move (a major upgrade by logical replication): its nodes, named uniquely across both clusters",
				"properties": obj{
					"name":  obj{"type": "string", "pattern": `^[a-z0-9][a-z0-9_.-]*$`},
					"nodes": obj{"type": "object", "minProperties": 1, "additionalProperties": node},
				}},
			"pooler": obj{"type": "object", "additionalProperties": false, "properties": obj{
				"kind": obj{"enum": []string{"pgbouncer"}}, "admin": obj{"type": "string"}, "database": obj{"type": "string"},
				"config": obj{"type": "string"}, "host": host,
			}},
			"poolers": obj{"type": "array", "minItems": 1, "description": "several poolers, paused and moved together; instead of pooler",
				"items": obj{"type": "object", "additionalProperties": false, "required": []string{"name"}, "properties": obj{
					"name": obj{"type": "string", "pattern": `^[a-z0-9][a-z0-9_.-]*$`},
					"kind": obj{"enum": []string{"pgbouncer"}}, "admin": obj{"type": "string"}, "database": obj{"type": "string"},
					"config": obj{"type": "string"}, "host": host,
				}}},
			"manager": obj{"type": "object", "additionalProperties": false, "properties": obj{
				"kind": obj{"enum": []string{"patroni", "repmgr", "pg_auto_failover"}}, "urls": obj{"type": "array", "items": obj{"type": "string"}},
				"configs": obj{"type": "object", "additionalProperties": obj{"type": "string"}}, "database": obj{"type": "string"},
				"monitor": obj{"type": "string"}, "formation": obj{"type": "string"}, "group": obj{"type": "integer", "minimum": 0},
				"username": obj{"type": "string"}, "password": obj{"type": "string"},
				"ca_file": obj{"type": "string"}, "insecure": obj{"type": "boolean"},
			}},
			"router": obj{"type": "object", "additionalProperties": false, "required": []string{"kind", "socket", "backend", "endpoint"}, "properties": obj{
				"kind":     obj{"enum": []string{"haproxy"}},
				"socket":   obj{"type": "string", "pattern": `^(unix:/|tcp:).+`, "description": "HAProxy's runtime API at level admin: unix:/path or tcp:host:port"},
				"backend":  obj{"type": "string", "description": "the backend whose servers are the nodes"},
				"servers":  obj{"type": "object", "additionalProperties": obj{"type": "string"}, "description": "node name to server name; default: the node's name"},
				"endpoint": obj{"type": "string", "description": "libpq connection string through HAProxy, as clients connect"},
				"host":     host,
			}},
		},
	}
}

// fleetSchema is the fleet file's schema (docs/fleet.md); `fleet plan`
// remains the authority: it also loads every inventory and fills the
// waves.
func fleetSchema() obj {
	name := obj{"type": "string", "pattern": `^[a-z0-9][a-z0-9_.-]*$`}
	vars := obj{"type": "object", "description": "runbook variables (--var NAME=VALUE)",
		"additionalProperties": obj{"type": []string{"string", "number", "boolean"}}}
	labels := obj{"type": "object", "additionalProperties": obj{"type": []string{"string", "number", "boolean"}}}
	selector := obj{"type": "object", "minProperties": 1, "additionalProperties": obj{"type": []string{"string", "number", "boolean"}}}
	count := obj{"type": "integer", "minimum": 0}
	return obj{
		"$schema":              "http://json-schema.org/draft-07/schema#",
		"$id":                  "https://switchover/fleet.schema.json",
		"title":                "switchover fleet",
		"type":                 "object",
		"additionalProperties": false,
		"required":             []string{"fleet", "playbook", "clusters"},
		"properties": obj{
			"fleet":     obj{"type": "string", "pattern": `^[a-z0-9][a-z0-9_.-]*$`, "description": "the fleet's name: typed to approve a run; tags every run of it"},
			"playbook":  obj{"type": "string", "description": "a shipped playbook's name, or a runbook path relative to the fleet file"},
			"candidate": obj{"type": "string", "description": "--candidate of every run: auto (default) or a node name"},
			"vars":      vars,
			"clusters": obj{"type": "array", "minItems": 1, "items": obj{
				"type": "object", "additionalProperties": false, "required": []string{"inventory"},
				"properties": obj{
					"inventory": obj{"type": "string", "description": "an inventory path, or a glob, relative to the fleet file"},
					"labels":    labels,
					"vars":      vars,
				}}},
			"labels": obj{"type": "array", "description": "variables for the clusters whose labels match", "items": obj{
				"type": "object", "additionalProperties": false, "required": []string{"match"},
				"properties": obj{"match": selector, "vars": vars}}},
			"waves": obj{"type": "array", "minItems": 1, "description": "in order, each from the clusters not yet in a wave; default: one wave of every cluster",
				"items": obj{
					"type": "object", "additionalProperties": false, "required": []string{"name"},
					"properties": obj{
						"name":     name,
						"clusters": obj{"type": "integer", "minimum": 1, "description": "this many clusters"},
						"percent":  obj{"type": "integer", "minimum": 1, "maximum": 100, "description": "this share of all clusters, rounded up"},
						"select":   selector,
					},
					"oneOf": []any{
						obj{"required": []string{"clusters"}, "not": obj{"anyOf": []any{obj{"required": []string{"percent"}}, obj{"required": []string{"select"}}}}},
						obj{"required": []string{"percent"}, "not": obj{"anyOf": []any{obj{"required": []string{"clusters"}}, obj{"required": []string{"select"}}}}},
						obj{"required": []string{"select"}, "not": obj{"anyOf": []any{obj{"required": []string{"clusters"}}, obj{"required": []string{"percent"}}}}},
						obj{"not": obj{"anyOf": []any{obj{"required": []string{"clusters"}}, obj{"required": []string{"percent"}}, obj{"required": []string{"select"}}}}},
					},
				}},
			"concurrency": obj{"type": "object", "additionalProperties": false, "properties": obj{
				"max":       obj{"type": "integer", "minimum": 1, "description": "at most this many clusters at once (default 1)"},
				"per_label": obj{"type": "object", "additionalProperties": obj{"type": "integer", "minimum": 1}, "description": "at most this many at once per value of each label"},
			}},
			"halt": obj{"type": "object", "additionalProperties": false, "description": "a run that does not exit 0 always halts", "properties": obj{
				"lost_commits":       obj{"type": "integer", "minimum": 0, "description": "more lost commits than this halts (default 0)"},
				"window_over":        obj{"type": "string", "pattern": `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`, "description": "a client window over this halts"},
				"client_errors_over": count,
			}},
			"window": obj{"type": "object", "additionalProperties": false, "properties": obj{
				"not_before": obj{"type": "string", "format": "date-time"},
				"not_after":  obj{"type": "string", "format": "date-time", "description": "no cluster starts when less is left than its estimated duration"},
			}},
		},
	}
}
