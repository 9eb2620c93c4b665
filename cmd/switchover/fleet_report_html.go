package main

import (
	"html/template"
	"io"
	"strings"

	"github.com/switchover/switchover/internal/fleet"
)

// The HTML fleet report is one self-contained page a change ticket can
// link to: the answer first, the header, every cluster, the totals, the
// halt and the chart of the client windows inline.

var fleetReportHTML = template.Must(template.New("fleet-report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Fleet {{.R.Fleet}}: run {{.R.FleetRun}}</title>
<style>
body { font-family: sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }
h1 { font-size: 1.3em; } .headline { font-size: 1.2em; font-weight: bold; margin: .5em 0 1em; }
table { border-collapse: collapse; margin: .5em 0 1.5em; } td, th { border: 1px solid #ccc; padding: 2px 8px; text-align: left; vertical-align: top; }
td.n { text-align: right; white-space: nowrap; } tr.halted td { background: #fbe9e7; }
</style>
</head>
<body>
<h1>Fleet {{.R.Fleet}}: run {{.R.FleetRun}}</h1>
<p class="headline">{{.Headline}}</p>
<table>
{{- range .Header}}
<tr><th>{{index . 0}}</th><td>{{index . 1}}</td></tr>
{{- end}}
</table>
<h2>Clusters</h2>
<table><tr><th>wave</th><th>cluster</th><th>outcome</th><th>primary → candidate</th><th>window</th><th>lost</th><th>errors</th><th>duration</th><th>run</th></tr>
{{- range .Rows}}
<tr{{if .Halted}} class="halted"{{end}}><td>{{.Wave}}</td><td>{{.Cluster}}</td><td>{{.Outcome}}</td><td>{{.Moved}}</td><td class="n">{{.Window}}</td><td class="n">{{.Lost}}</td><td class="n">{{.Errors}}</td><td class="n">{{.Took}}</td><td>{{.RunID}}</td></tr>
{{- end}}
</table>
<p>Each run's own report: <code>switchover report RUN_ID</code>.</p>
<h2>Totals</h2>
<ul>
{{- range .Totals}}
<li>{{.}}</li>
{{- end}}
</ul>
{{- if .Halts}}
<h2>Halt</h2>
<ul>
{{- range .Halts}}
<li>{{.}}</li>
{{- end}}
</ul>
{{- end}}
<h2>Client windows</h2>
{{.SVG}}
</body>
</html>
`))

// fleetHTMLRow is a cluster's row, in words.
type fleetHTMLRow struct {
	Wave, Cluster, Outcome, Moved, Window, Lost, Errors, Took, RunID string
	Halted                                                           bool
}

// writeFleetHTML writes the HTML page of a fleet report.
func writeFleetHTML(w io.Writer, r *fleet.Report) error {
	var svg strings.Builder
	writeFleetSVG(&svg, r)
	data := struct {
		R             *fleet.Report
		Headline      string
		Header        [][2]string
		Rows          []fleetHTMLRow
		Totals, Halts []string
		SVG           template.HTML
	}{R: r, Headline: fleetHeadline(r), Header: fleetHeader(r), Totals: fleetTotals(r),
		SVG: template.HTML(svg.String())} // drawn here, every text in it escaped
	for _, row := range r.Clusters {
		window, lost, errs, took := fleetFigures(row.Outcome)
		data.Rows = append(data.Rows, fleetHTMLRow{Wave: row.Wave, Cluster: row.Cluster, Outcome: fleetOutcome(row), Moved: fleetMoved(row.Outcome),
			Window: window, Lost: lost, Errors: errs, Took: took, RunID: row.RunID, Halted: row.Halted})
	}
	for _, h := range r.Halts {
		data.Halts = append(data.Halts, haltText(h))
	}
	return fleetReportHTML.Execute(w, data)
}
