package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
)

// InputRunner is an Executor that can also give a command standard input.
// A file's contents, which may hold a password, travel that way rather
// than on the command line, where any user of the host can read them in
// ps while the command runs.
type InputRunner interface {
	Executor
	// RunInput is Run with the command's standard input read from input
	// instead of empty. Input is text of at most MaxInput bytes, without
	// NUL bytes, whatever the transport; more, or a NUL, is an error and
	// nothing runs. The command runs only once all of input has reached
	// the host.
	RunInput(ctx context.Context, command string, input io.Reader) (Output, error)
}

// MaxInput bounds what RunInput sends to a command: over ssh, the input
// is held in the remote shell's memory before the command starts, so
// that a command never acts on half of it.
const MaxInput = 1 << 20

// ErrNoInput marks a RunInput on an executor that cannot give a command
// standard input. Nothing ran.
var ErrNoInput = errors.New("cannot give a command standard input")

// RunInput runs command through e with input as its standard input, or
// refuses, wrapping ErrNoInput and running nothing, when e cannot give a
// command input. Callers that must keep input off command lines use it
// instead of quoting input into the command.
func RunInput(ctx context.Context, e Executor, command string, input io.Reader) (Output, error) {
	r, ok := e.(InputRunner)
	if !ok {
		return Output{}, fmt.Errorf("%s: %w", e.Where(), ErrNoInput)
	}
	return r.RunInput(ctx, command, input)
}

// readInput reads a command's input whole, as every transport takes it:
// text of at most MaxInput bytes.
func readInput(input io.Reader) ([]byte, error) {
	if input == nil {
		return nil, nil
	}
	data, err := io.ReadAll(io.LimitReader(input, MaxInput+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("read the command's input: %w", err)
	case len(data) > MaxInput:
		return nil, fmt.Errorf("the command's input is more than %d bytes; nothing ran", MaxInput)
	case bytes.IndexByte(data, 0) >= 0:
		return nil, errors.New("the command's input holds a NUL byte, which is not text; nothing ran")
	}
	return data, nil
}
