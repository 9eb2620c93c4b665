package spec

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrInvalid: the runbook, the inventory or the invocation is wrong (exit 2).
// The engine's sentinel of the same name is this one.
var ErrInvalid = errors.New("invalid")

// Pos is a place in a runbook or inventory file.
type Pos struct {
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	Col  int    `json:"col,omitempty"`
}

// String renders file:line:col, dropping what is unknown.
func (p Pos) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Col == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Problem is one thing wrong with a runbook or an inventory.
type Problem struct {
	Pos Pos
	Msg string
}

func (p Problem) String() string {
	if s := p.Pos.String(); s != "" {
		return s + ": " + p.Msg
	}
	return p.Msg
}

// ValidationError lists every problem found, in file order.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// problems collects Problems while a file is read.
type problems []Problem

func (ps *problems) add(pos Pos, format string, args ...any) {
	*ps = append(*ps, Problem{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

// err returns a *ValidationError sorted by position, or nil.
func (ps problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	out := append([]Problem(nil), ps...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Pos, out[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	return &ValidationError{Problems: out}
}

// NewValidationError builds a *ValidationError from problems gathered in
// several passes: duplicates are dropped and the rest sorted by position.
func NewValidationError(ps []Problem) error {
	seen := map[Problem]bool{}
	var out problems
	for _, p := range ps {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out.err()
}
