package main

import (
	"fmt"
	"html"
	"io"
	"strings"
	"time"

	"github.com/switchover/switchover/runbook/journal"
)

// The picture of the window: the canary's commits over time as bars, the
// stretch the pooler held clients shaded, the longest write gap outlined,
// and every step's start marked, so that a reader sees at once where
// clients waited and why. Plain SVG, written by hand: no dependency.

const (
	svgWidth  = 960
	svgLeft   = 56  // room for the y axis
	svgRight  = 16  // margin
	svgTop    = 44  // room for the title
	svgPlot   = 150 // height of the bars' area
	svgRowH   = 13  // a row of step labels
	svgLabelW = 6.2 // the width of a character of the labels, roughly
)

// hasWindowPicture reports whether a report has what the picture draws.
func hasWindowPicture(r *journal.Report) bool {
	return r.Canary != nil && r.Canary.Timeline != nil && len(r.Canary.Timeline.Counts) > 0
}

// writeWindowSVG draws the window of a report that has a canary timeline.
func writeWindowSVG(w io.Writer, r *journal.Report) error {
	if !hasWindowPicture(r) {
		return fmt.Errorf("report %s: the run recorded no canary timeline to draw", r.RunID)
	}
	tl := r.Canary.Timeline
	from := tl.StartMS
	to := from + int64(len(tl.Counts))*tl.BucketMS
	span := float64(max(to-from, 1))
	plotW := float64(svgWidth - svgLeft - svgRight)
	x := func(atMS int64) float64 {
		return float64(svgLeft) + plotW*float64(atMS-from)/span
	}
	inside := func(atMS int64) bool { return atMS >= from && atMS <= to }
	peak := 1
	for _, c := range tl.Counts {
		peak = max(peak, c)
	}
	base := float64(svgTop + svgPlot)

	// Step labels first: their rows decide the height.
	type mark struct {
		x, textX float64
		text     string
		row      int
	}
	var marks []mark
	var rowEnd []float64
	for _, s := range r.Steps {
		if s.Started == nil || !inside(s.StartMS) {
			continue
		}
		m := mark{x: x(s.StartMS), text: s.Name}
		if s.Index > 0 {
			m.text = fmt.Sprintf("%d %s", s.Index, s.Name)
		}
		width := float64(len(m.text)) * svgLabelW
		m.textX = min(m.x+1, svgWidth-svgRight-width) // a label near the right edge moves left
		m.row = -1
		for i, end := range rowEnd {
			if m.textX >= end+4 {
				m.row = i
				break
			}
		}
		if m.row < 0 {
			m.row = len(rowEnd)
			rowEnd = append(rowEnd, 0)
		}
		rowEnd[m.row] = m.textX + width
		marks = append(marks, m)
	}
	labelsTop := base + 30
	height := int(labelsTop) + len(rowEnd)*svgRowH + 12

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", svgWidth, height, svgWidth, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", svgWidth, height)
	fmt.Fprintf(&b, `<text x="%d" y="18" font-size="14" font-weight="bold">%s</text>`+"\n", svgLeft, esc(r.Headline))
	fmt.Fprintf(&b, `<text x="%d" y="34" fill="#555">run %s: canary commits per %d ms through %s</text>`+"\n", svgLeft, esc(r.RunID), tl.BucketMS, esc(orDash(r.Canary.Endpoint)))

	// The pooler's hold, shaded behind the bars.
	if h := r.Held; h != nil {
		end := h.ToMS
		if end == 0 {
			end = to
		}
		x1, x2 := x(max(h.FromMS, from)), x(min(end, to))
		if x2 > x1 {
			fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="#f2c14e" fill-opacity="0.35"><title>clients held by the pooler: %s</title></rect>`+"\n",
				x1, svgTop, x2-x1, svgPlot, esc(ms(end-h.FromMS)))
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#8a6d00">pooler paused %s</text>`+"\n", x1+2, svgTop+11, esc(ms(end-h.FromMS)))
		}
	}
	// The bars.
	bw := plotW / float64(len(tl.Counts))
	for i, c := range tl.Counts {
		if c == 0 {
			continue
		}
		hgt := float64(svgPlot-14) * float64(c) / float64(peak)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#3b6ea5"/>`+"\n", float64(svgLeft)+bw*float64(i), base-hgt, max(bw-0.3, 0.5), hgt)
	}
	// The longest gap without an acknowledged commit.
	if gf, gt, ok := gapSpan(r); ok && inside(gf) {
		x1, x2 := x(gf), x(min(gt, to))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="none" stroke="#c0392b" stroke-width="1.5"/>`+"\n", x1, svgTop+16, max(x2-x1, 1), svgPlot-16)
		label := "longest write gap"
		if g := r.Canary.LongestGapMS; g != nil {
			label += " " + gapText(*g)
		}
		// On a white ground: the label may reach over the bars.
		lw := float64(len(label))*svgLabelW + 6
		lx := min(x1+3, svgWidth-svgRight-lw)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="15" fill="#ffffff" fill-opacity="0.85"/>`+"\n", lx-3, svgTop+18, lw)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#c0392b">%s</text>`+"\n", lx, svgTop+29, esc(label))
	}
	// Axes: commits up the side, time along the bottom.
	fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#333"/>`+"\n", svgLeft, base, svgWidth-svgRight, base)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%.1f" stroke="#333"/>`+"\n", svgLeft, svgTop, svgLeft, base)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%d</text>`+"\n", svgLeft-4, svgTop+18, peak)
	fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">0</text>`+"\n", svgLeft-4, base)
	step := tickStep(to - from)
	for t := (from/step + 1) * step; t < to; t += step {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333"/>`+"\n", x(t), base, x(t), base+4)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#333">%s</text>`+"\n", x(t), base+15, esc(reportOffset(t)))
	}
	// Each step's start: a dashed line up through the bars, its name below.
	for _, m := range marks {
		y := labelsTop + float64(m.row*svgRowH)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="#777" stroke-dasharray="2,2"/>`+"\n", m.x, svgTop, m.x, y-9)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="#333">%s</text>`+"\n", m.textX, y, esc(m.text))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// gapSpan is the canary's longest gap in milliseconds since the start.
func gapSpan(r *journal.Report) (from, to int64, ok bool) {
	f, err1 := time.Parse(time.RFC3339Nano, r.Canary.GapFrom)
	t, err2 := time.Parse(time.RFC3339Nano, r.Canary.GapTo)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return ms64(r, f), ms64(r, t), true
}

// tickStep is a round interval giving the time axis about ten ticks.
func tickStep(spanMS int64) int64 {
	for _, s := range []int64{10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000, 120000, 300000} {
		if spanMS/s <= 12 {
			return s
		}
	}
	return 600000
}

func esc(s string) string { return html.EscapeString(s) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
