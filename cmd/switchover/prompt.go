package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/manifoldco/promptui"

	"github.com/switchover/switchover/runbook"
)

// promptOperator asks at a terminal with promptui. It is used only when
// stdin and stderr are terminals; scripted runs have no operator at all.
type promptOperator struct {
	in  io.ReadCloser
	out io.WriteCloser
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

func newPromptOperator(io *streams) *promptOperator {
	return &promptOperator{in: readCloser(io.in), out: nopWriteCloser{io.err}}
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
			fmt.Fprintf(w, "\nstep %q %s\n  node:    %s\n  does:    %s\n", q.Step.Name, what, q.Effect.Node, q.Effect.Command)
			if q.Effect.Changes != "" {
				fmt.Fprintf(w, "  changes: %s\n", q.Effect.Changes)
			}
			if len(q.Also) > 0 {
				fmt.Fprintf(w, "approving it also approves these later steps, which then run without asking (no prompt waits while clients are held):\n")
				for _, a := range q.Also {
					fmt.Fprintf(w, "  step %q on %s\n    does:    %s\n", a.Step.Name, a.Effect.Node, a.Effect.Command)
					if a.Effect.Changes != "" {
						fmt.Fprintf(w, "    changes: %s\n", a.Effect.Changes)
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
				typed, err := (&promptui.Prompt{Label: fmt.Sprintf("type the cluster name (%s) to confirm", q.TypeToConfirm), Stdin: p.in, Stdout: p.out}).Run()
				if err != nil {
					return runbook.Answer{}, promptErr(err)
				}
				if strings.TrimSpace(typed) != q.TypeToConfirm {
					fmt.Fprintf(w, "typed %q, not %q: not approved\n", typed, q.TypeToConfirm)
					return runbook.Answer{Yes: false}, nil
				}
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

func (p *promptOperator) selectOne(label string, items []string) (string, error) {
	s := promptui.Select{Label: label, Items: items, Stdin: p.in, Stdout: p.out, HideSelected: false}
	_, choice, err := s.Run()
	return choice, promptErr(err)
}

func (p *promptOperator) details(s *runbook.Step) {
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
