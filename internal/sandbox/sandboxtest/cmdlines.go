package sandboxtest

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// CmdlineScan reads the command line of every process started after it,
// as often as it can, until finished: a test that keeps a secret off
// command lines (where any user of the host reads it in ps) runs the work
// meanwhile. It keeps the command lines that hold the secret (masked), and
// counts the scans that saw a process whose command line holds sign, which
// proves it saw the work it was meant to watch. Processes that ran before
// it are left out, so that a scan is short and a process living a few
// milliseconds is seen.
type CmdlineScan struct {
	secret, sign string
	before       map[string]bool
	stop         chan struct{}
	done         chan struct{}

	mu     sync.Mutex
	hits   map[string]string // pid -> its command line, the secret masked
	scans  int
	signed int
}

// ScanCmdlines starts scanning for secret, counting the scans that see
// sign; Finish stops it.
func ScanCmdlines(secret, sign string) *CmdlineScan {
	s := &CmdlineScan{secret: secret, sign: sign, before: map[string]bool{}, hits: map[string]string{}, stop: make(chan struct{}), done: make(chan struct{})}
	for _, pid := range pids() {
		s.before[pid] = true
	}
	go func() {
		defer close(s.done)
		for {
			s.once()
			select {
			case <-s.stop:
				s.once()
				return
			default:
				time.Sleep(time.Millisecond)
			}
		}
	}()
	return s
}

// Finish stops the scan and returns the command lines that held the
// secret ("pid N: LINE", the secret masked), how many scans there were,
// and how many of them saw sign.
func (s *CmdlineScan) Finish() (hits []string, scans, signed int) {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	for pid, line := range s.hits {
		hits = append(hits, fmt.Sprintf("pid %s: %s", pid, line))
	}
	return hits, s.scans, s.signed
}

// pids lists the processes that run now.
func pids() []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		if n := e.Name(); n[0] >= '0' && n[0] <= '9' {
			out = append(out, n)
		}
	}
	return out
}

func (s *CmdlineScan) once() {
	sawSign := false
	hits := map[string]string{}
	for _, pid := range pids() {
		if s.before[pid] {
			continue
		}
		b, err := os.ReadFile("/proc/" + pid + "/cmdline")
		if err != nil || len(b) == 0 {
			continue // the process ended, or is a kernel thread
		}
		line := string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		if strings.Contains(line, s.sign) {
			sawSign = true
		}
		if strings.Contains(line, s.secret) {
			hits[pid] = strings.ReplaceAll(line, s.secret, "********")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scans++
	if sawSign {
		s.signed++
	}
	for pid, line := range hits {
		s.hits[pid] = line
	}
}
