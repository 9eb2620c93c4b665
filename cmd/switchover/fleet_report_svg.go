package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/fleet"
)

// The chart of a fleet's client windows: one bar per cluster in the order
// the clusters ran, its height the run's longest client write gap, the
// halt rule's window_over drawn across as a line, so that a reader sees
// which cluster came near the budget and which broke it. Plain SVG,
// written by hand as the run's picture is (report_svg.go).

const (
	fleetSVGPlot   = 180 // height of the bars' area
	fleetSVGLabels = 96  // room under the bars for the cluster names, slanted
)

// writeFleetSVG draws the client windows of a fleet report.
func writeFleetSVG(w io.Writer, r *fleet.Report) {
	ran := r.Ran()
	budget := float64(r.Halt.WindowOver) / float64(time.Millisecond)
	peak := budget
	for _, row := range ran {
		if o := row.Outcome; o != nil && o.Figures.WindowMS != nil {
			peak = max(peak, *o.Figures.WindowMS)
		}
	}
	top := peak * 1.15
	if top <= 0 {
		top = 1
	}
	plotW := float64(svgWidth - svgLeft - svgRight)
	base := float64(svgTop + fleetSVGPlot)
	y := func(v float64) float64 { return base - float64(fleetSVGPlot)*v/top }
	height := int(base) + fleetSVGLabels

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", svgWidth, height, svgWidth, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", svgWidth, height)
	fmt.Fprintf(&b, `<text x="%d" y="18" font-size="14" font-weight="bold">%s</text>`+"\n", svgLeft, esc("Fleet "+r.Fleet+": client window of each cluster"))
	fmt.Fprintf(&b, `<text x="%d" y="34" fill="#555">%s</text>`+"\n", svgLeft, esc(fmt.Sprintf("fleet run %s: the longest client write gap of each run, in the order the clusters ran", r.FleetRun)))
	if len(ran) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" fill="#555">no cluster ran</text>`+"\n", svgLeft+8, base-fleetSVGPlot/2)
	}
	slot := plotW / float64(max(len(ran), 1))
	bw := min(slot*0.7, 60)
	for i, row := range ran {
		cx := float64(svgLeft) + slot*(float64(i)+0.5)
		var v *float64
		if row.Outcome != nil {
			v = row.Outcome.Figures.WindowMS
		}
		fill := "#3b6ea5"
		switch {
		case row.Halted || (v != nil && budget > 0 && *v > budget):
			fill = "#c0392b"
		case row.State != fleet.StateDone:
			fill = "#999999"
		}
		tip := fmt.Sprintf("%s (wave %s): %s, window %s", row.Cluster, row.Wave, row.State, windowText(v))
		if v == nil {
			// No figure: a hollow mark on the axis, not a bar of zero.
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="6" fill="none" stroke="%s" stroke-dasharray="2,2"><title>%s</title></rect>`+"\n",
				cx-bw/2, base-6, bw, fill, esc(tip))
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#555">—</text>`+"\n", cx, base-10)
		} else {
			hgt := max(base-y(*v), 1)
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`+"\n", cx-bw/2, base-hgt, bw, hgt, fill, esc(tip))
			if slot >= 34 {
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#333">%s</text>`+"\n", cx, base-hgt-3, esc(windowText(v)))
			}
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end" transform="rotate(-40 %.1f %.1f)" fill="#333">%s</text>`+"\n",
			cx+3, base+14, cx+3, base+14, esc(row.Cluster))
	}
	// The halt budget, across the bars.
	if budget > 0 {
		by := y(budget)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#c0392b" stroke-width="1.5" stroke-dasharray="6,3"/>`+"\n", svgLeft, by, svgWidth-svgRight, by)
		label := "halt: window_over " + r.Halt.WindowOver.String()
		lw := float64(len(label))*svgLabelW + 6
		lx := float64(svgLeft) + 6 // the bars that ran first are on the left, often the canary's short one
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="15" fill="#ffffff" fill-opacity="0.85"/>`+"\n", lx-3, by-17, lw)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="#c0392b">%s</text>`+"\n", lx, by-5, esc(label))
	}
	// Axes: the window up the side, the clusters along the bottom.
	fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#333"/>`+"\n", svgLeft, base, svgWidth-svgRight, base)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%.1f" stroke="#333"/>`+"\n", svgLeft, svgTop, svgLeft, base)
	if peak > 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", svgLeft-4, y(peak)+4, esc(windowText(&peak)))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">0</text>`+"\n", svgLeft-4, base)
	b.WriteString("</svg>\n")
	_, _ = io.WriteString(w, b.String())
}
