package transport

import (
	"fmt"
	"strings"
	"time"
)

// PollScript is a POSIX sh command that polls on the host itself: it runs
// read, and runs it again every every until the shell condition done holds
// or within has passed on the host's clock, then prints the last reading's
// stdout and stderr and exits with its exit code, as if read had run once
// at the end. done sees the reading's exit code in $rc and its stdout in
// the file "$out"; it must change nothing. With within zero or less, read
// runs once.
//
// It exists so that a wait on a remote host costs one command (over ssh,
// one session) instead of one per poll, and polls at the host's own pace,
// not at the pace of round trips. The caller still bounds the whole command
// with its own deadline: the loop's is only the point at which it stops to
// report, so that the caller sees the last reading rather than a cut-off.
func PollScript(read, done string, within, every time.Duration) string {
	if within <= 0 {
		return read
	}
	var b strings.Builder
	// Milliseconds on the host's clock: GNU date's nanoseconds when it has
	// them, whole seconds otherwise.
	b.WriteString(`now() { t=$(date +%s%N 2>/dev/null); case $t in ''|*[!0-9]*) t=$(($(date +%s) * 1000000000));; esac; echo $((t / 1000000)); }` + "\n")
	b.WriteString(`d=$(mktemp -d 2>/dev/null) || { d=${TMPDIR:-/tmp}/switchover-poll.$$; mkdir -m 700 "$d" || exit 125; }` + "\n")
	b.WriteString(`trap 'rm -rf "$d"' EXIT` + "\n")
	b.WriteString(`out=$d/out err=$d/err` + "\n")
	fmt.Fprintf(&b, "end=$(($(now) + %d))\n", within.Milliseconds())
	b.WriteString("while :; do\n")
	fmt.Fprintf(&b, "  (%s\n  ) </dev/null >\"$out\" 2>\"$err\"\n", read)
	b.WriteString("  rc=$?\n")
	fmt.Fprintf(&b, "  if %s\n  then break; fi\n", doneTest(done))
	b.WriteString(`  if [ "$(now)" -ge "$end" ]; then break; fi` + "\n")
	// A sleep without fractions (POSIX's own) waits a whole second.
	fmt.Fprintf(&b, "  sleep %s 2>/dev/null || sleep 1\n", seconds(every))
	b.WriteString("done\n")
	b.WriteString(`cat "$out"; cat "$err" >&2` + "\n")
	b.WriteString(`exit "$rc"` + "\n")
	return b.String()
}

// doneTest is done as the condition of an if, in a subshell so that it
// can neither end the loop's shell nor change its variables.
func doneTest(done string) string {
	if strings.TrimSpace(done) == "" {
		return "false"
	}
	return "(" + done + "\n  ) </dev/null >/dev/null 2>&1"
}

// seconds is d as sleep(1) reads it, at least a millisecond.
func seconds(d time.Duration) string {
	d = max(d, time.Millisecond)
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", d.Seconds()), "0"), ".")
}
