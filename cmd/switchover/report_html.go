package main

import (
	"html/template"
	"io"
	"strconv"
	"strings"

	"github.com/switchover/switchover/runbook/journal"
)

// The HTML report is one page a change ticket can link to: the answer
// first, the topology before and after, the picture of the window inline,
// the steps at a glance, and the full Markdown report below.

var reportHTML = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Kind}} {{.R.RunID}}: {{.R.Runbook.Name}} on {{.R.Cluster}}</title>
<style>
body { font-family: sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }
h1 { font-size: 1.3em; } .headline { font-size: 1.4em; font-weight: bold; margin: .5em 0 1em; }
table { border-collapse: collapse; margin: .5em 0 1.5em; } td, th { border: 1px solid #ccc; padding: 2px 8px; text-align: left; }
td.n { text-align: right; } pre { background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: .85em; }
</style>
</head>
<body>
<h1>{{.Kind}} {{.R.RunID}}: {{.R.Runbook.Name}} on {{.R.Cluster}}</h1>
<p class="headline">{{.R.Headline}}</p>
<p>{{.R.Outcome}} after {{.Took}}, started by {{.R.StartedBy}} at {{.Started}}.</p>
{{- if .R.Topology}}
<h2>Topology</h2>
<table><tr><th>node</th><th>before</th><th>after</th></tr>
{{- range .Topology}}
<tr><td>{{.Name}}</td><td>{{.Before}}</td><td>{{.After}}</td></tr>
{{- end}}
</table>
{{- end}}
{{- if .SVG}}
<h2>The window</h2>
{{.SVG}}
{{- end}}
<h2>Steps</h2>
<table><tr><th>#</th><th>step</th><th>section</th><th>start</th><th>duration</th><th>state</th></tr>
{{- range .Steps}}
<tr><td class="n">{{index . 0}}</td><td>{{index . 1}}</td><td>{{index . 2}}</td><td class="n">{{index . 3}}</td><td class="n">{{index . 4}}</td><td>{{index . 5}}</td></tr>
{{- end}}
</table>
<h2>The full report</h2>
<pre>{{.Markdown}}</pre>
</body>
</html>
`))

// writeHTMLReport writes the HTML page of a report.
func writeHTMLReport(w io.Writer, r *journal.Report) error {
	var md strings.Builder
	writeMarkdownReport(&md, r, "")
	data := struct {
		R             *journal.Report
		Kind          string
		Took, Started string
		Topology      []topologyRow
		SVG           template.HTML
		Steps         [][]string
		Markdown      string
	}{R: r, Kind: "Run", Took: ms(r.DurationMS), Started: reportStamp(r.Started), Topology: topologyRows(r), Markdown: md.String()}
	if r.DryRun {
		data.Kind = "Dry run"
	}
	if hasWindowPicture(r) {
		var svg strings.Builder
		if err := writeWindowSVG(&svg, r); err != nil {
			return err
		}
		data.SVG = template.HTML(svg.String()) // drawn here, every text in it escaped
	}
	for _, s := range r.Steps {
		start, took := "-", "-"
		if s.Started != nil {
			start, took = reportOffset(s.StartMS), ms(s.DurationMS)
		}
		data.Steps = append(data.Steps, []string{reportStepNumber(s), reportStepName(s), string(s.Section), start, took, reportStepState(s, r.DryRun)})
	}
	return reportHTML.Execute(w, data)
}

// topologyRow is a node before and after the run, in words.
type topologyRow struct{ Name, Before, After string }

func topologyRows(r *journal.Report) []topologyRow {
	t := r.Topology
	if t == nil {
		return nil
	}
	var rows []topologyRow
	index := map[string]int{}
	row := func(name string) *topologyRow {
		if i, ok := index[name]; ok {
			return &rows[i]
		}
		index[name] = len(rows)
		rows = append(rows, topologyRow{Name: name, Before: "-", After: "-"})
		return &rows[len(rows)-1]
	}
	for _, n := range t.Before {
		row(n.Name).Before = nodeText(n)
	}
	for _, n := range t.After {
		row(n.Name).After = nodeText(n)
	}
	return rows
}

// nodeText says what a node was: "primary, timeline 2", "standby of pg2,
// timeline 2", "standby of pg1, not streaming", "unreachable".
func nodeText(n journal.ReportNode) string {
	var s string
	switch n.Role {
	case "standby":
		s = "standby"
		if n.Upstream != "" {
			s += " of " + n.Upstream
		}
		if !n.Streaming {
			s += ", not streaming"
		}
	default:
		s = n.Role
	}
	if n.Timeline > 0 && n.Role != "unreachable" {
		s += ", timeline " + itoa64(n.Timeline)
	}
	return s
}

func itoa64(v int64) string { return strconv.FormatInt(v, 10) }
