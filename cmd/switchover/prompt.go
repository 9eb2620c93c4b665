package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/manifoldco/promptui"

	"github.com/switchover/switchover/runbook"
	"github.com/switchover/switchover/runbook/spec"
)

// promptOperator asks at a terminal with promptui. It is used only when
// stdin is a terminal; scripted runs have no operator at all.
type promptOperator struct {
	in  io.ReadCloser
	out io.WriteCloser
	// color is false under NO_COLOR: the prompts use plain templates.
	color bool
	// width is the terminal's, for wrapping approval blocks.
	width int
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// confirmTries is how often a mistyped cluster name is asked for again.
const confirmTries = 3

func newPromptOperator(io *streams) *promptOperator {
	out := promptWriter(io)
	return &promptOperator{in: readCloser(io.in), out: out, color: os.Getenv("NO_COLOR") == "", width: terminalWidth(out)}
}

// promptWriter is where prompts go: stderr when it is a terminal, else the
// controlling terminal (`run ... 2>&1 | tee log` at a terminal asks there),
// else stderr all the same.
func promptWriter(io *streams) io.WriteCloser {
	if isTerminal(io.err) {
		return nopWriteCloser{io.err}
	}
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		return tty
	}
	return nopWriteCloser{io.err}
}

func readCloser(r io.Reader) io.ReadCloser {
	if rc, ok := r.(io.ReadCloser); ok {
		return rc
	}
	return io.NopCloser(r)
}

// Ask implements runbook.Operator.
func (p *promptOperator) Ask(ctx context.Context, q runbook.Question) (runbook.Answer, error) {
	w := p.out
	switch q.Kind {
	case runbook.AskApprove:
		for {
			what := "is destructive"
			if !q.Step.Destructive {
				what = "asks ahead for the approval of what follows it"
			}
			fmt.Fprintln(w)
			p.wrapped("", fmt.Sprintf("step %q %s", q.Step.Name, what))
			p.wrapped("  node:    ", q.Effect.Node)
			p.wrapped("  does:    ", q.Effect.Command)
			if q.Effect.Changes != "" {
				p.wrapped("  changes: ", q.Effect.Changes)
			}
			if len(q.Also) > 0 {
				p.wrapped("", "approving it also approves these later steps, which then run without asking (no prompt waits while clients are held):")
				for _, a := range q.Also {
					p.wrapped("  ", fmt.Sprintf("step %q on %s", a.Step.Name, a.Effect.Node))
					p.wrapped("    does:    ", a.Effect.Command)
					if a.Effect.Changes != "" {
						p.wrapped("    changes: ", a.Effect.Changes)
					}
				}
			}
			choice, err := p.selectOne("proceed with step "+q.Step.Name+"?", []string{"proceed", "show details", "abort"})
			if err != nil {
				return runbook.Answer{}, err
			}
			switch choice {
			case "show details":
				p.details(q.Step)
				continue
			case "abort":
				return runbook.Answer{Yes: false}, nil
			}
			if q.TypeToConfirm != "" {
				return p.confirm("cluster", q.TypeToConfirm)
			}
			return runbook.Answer{Yes: true}, nil
		}
	case runbook.AskManual:
		fmt.Fprintf(w, "\nchecklist (step %q): %s\n", q.Step.Name, q.Effect.Command)
		choice, err := p.selectOne("done?", []string{"done", "abort"})
		if err != nil {
			return runbook.Answer{}, err
		}
		return runbook.Answer{Yes: choice == "done"}, nil
	case runbook.AskSettle:
		fmt.Fprintf(w, "\n%s\n  node: %s\n  does: %s\n", q.Detail, q.Effect.Node, q.Effect.Command)
		choice, err := p.selectOne("what now?", q.Choices)
		if err != nil {
			return runbook.Answer{}, err
		}
		return runbook.Answer{Yes: choice != runbook.SettleAbort, Choice: choice}, nil
	}
	return runbook.Answer{}, fmt.Errorf("unknown question %d", q.Kind)
}

// confirm asks for the name of what is approved (the cluster's, a
// fleet's), again after a typing slip, up to confirmTries times; then it
// is not approved.
func (p *promptOperator) confirm(what, name string) (runbook.Answer, error) {
	for try := 1; try <= confirmTries; try++ {
		label := fmt.Sprintf("type the %s name (%s) to confirm", what, name)
		if try > 1 {
			label = fmt.Sprintf("type the %s name (%s) to confirm, try %d of %d", what, name, try, confirmTries)
		}
		pr := &promptui.Prompt{Label: label, Stdin: p.in, Stdout: p.out}
		if !p.color {
			pr.Templates = plainPromptTemplates
		}
		typed, err := pr.Run()
		if err != nil {
			return runbook.Answer{}, promptErr(err)
		}
		if strings.TrimSpace(typed) == name {
			return runbook.Answer{Yes: true}, nil
		}
		if try < confirmTries {
			fmt.Fprintf(p.out, "typed %q, not %q: try again\n", typed, name)
			continue
		}
		fmt.Fprintf(p.out, "typed %q, not %q, %d times: not approved\n", typed, name, confirmTries)
	}
	return runbook.Answer{Yes: false}, nil
}

// The templates used under NO_COLOR: promptui's defaults colour the label,
// the icons and the cursor.
var (
	plainSelectTemplates = &promptui.SelectTemplates{
		Label:    "{{ . }}",
		Active:   "> {{ . }}",
		Inactive: "  {{ . }}",
		Selected: "{{ . }}",
		Help:     "(arrow keys to move, enter to choose)",
	}
	plainPromptTemplates = &promptui.PromptTemplates{
		Prompt:  "{{ . }}: ",
		Valid:   "{{ . }}: ",
		Invalid: "{{ . }}: ",
		Success: "{{ . }}: ",
	}
)

// selectTemplates are the templates of a choice: promptui's (nil) with
// colour, plain ones under NO_COLOR.
func (p *promptOperator) selectTemplates() *promptui.SelectTemplates {
	if p.color {
		return nil
	}
	return plainSelectTemplates
}

func (p *promptOperator) selectOne(label string, items []string) (string, error) {
	s := promptui.Select{Label: label, Items: items, Stdin: p.in, Stdout: p.out, HideSelected: false, Templates: p.selectTemplates()}
	_, choice, err := s.Run()
	return choice, promptErr(err)
}

// wrapped writes prefix+text wrapped to the terminal's width, continuation
// lines indented under the text.
func (p *promptOperator) wrapped(prefix, text string) {
	indent := strings.Repeat(" ", runeLen(prefix))
	room := max(p.width-1-runeLen(prefix), 20)
	head := prefix
	for _, l := range strings.Split(text, "\n") {
		for _, line := range fitText(l, room, 0) {
			fmt.Fprintln(p.out, head+line)
			head = indent
		}
	}
}

func (p *promptOperator) details(s *spec.Step) {
	w := p.out
	if s.Description != "" {
		fmt.Fprintf(w, "  %s\n", s.Description)
	}
	for _, c := range s.Requires {
		fmt.Fprintf(w, "  requires %s (checked)\n", c.Kind)
	}
	for _, c := range s.Ensures {
		fmt.Fprintf(w, "  ensures  %s (checked after)\n", c.Kind)
	}
	fmt.Fprintf(w, "  timeout  %s; on failure: %s\n", s.Timeout, orStop(s.OnFailure))
}

func orStop(s string) string {
	if s == "" {
		return "stop"
	}
	return "rollback/repair " + s
}

func promptErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, promptui.ErrInterrupt), errors.Is(err, promptui.ErrEOF), errors.Is(err, io.EOF):
		return errors.New("no answer (interrupted or end of input)")
	}
	return err
}
