package discover

// What the servers cannot say: how commands reach their hosts, which OS
// user owns them, where their programs are.

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/pg"
	"github.com/switchover/switchover/internal/transport"
)

// hostFor is how the inventory reaches the host at addr of the node (or
// pooler) name, whose data directory or configuration file is path.
func (w *walker) hostFor(ctx context.Context, name, addr, path string) (Host, error) {
	if w.o.SSH != "" {
		a := strings.NewReplacer("{host}", bracketed(addr), "{name}", name).Replace(sshPattern(w.o.SSH))
		if _, _, _, err := transport.ParseSSHAddress(a); err != nil {
			return Host{}, fmt.Errorf("%w: --ssh %q gives %q for %s: %v", ErrOptions, w.o.SSH, a, name, err)
		}
		return Host{Host: cluster.Host{Transport: "ssh", Address: a, User: w.o.RunAs, SSHConfig: w.o.SSHConfig}}, nil
	}
	h := Host{Host: cluster.Host{Transport: "local", User: w.o.RunAs}}
	if !isLocal(ctx, addr) {
		h.Guessed = fmt.Sprintf("%s is not an address of this machine, so commands would not reach its host: give --ssh", addr)
		return h, nil
	}
	if h.User == "" && path != "" {
		if owner := ownerOf(path); owner != "" && owner != currentUser() {
			h.User = owner
			h.Guessed = fmt.Sprintf("the owner of %s on this machine", path)
		}
	}
	return h, nil
}

// sshPattern is the --ssh pattern with {host} where it names no place: a
// user alone ("admin", "admin@") reaches every node's own address.
func sshPattern(p string) string {
	if strings.Contains(p, "{host}") || strings.Contains(p, "{name}") {
		return p
	}
	if !strings.Contains(p, "@") {
		return p + "@{host}"
	}
	if strings.HasSuffix(p, "@") {
		return p + "{host}"
	}
	return p
}

// bracketed writes an IPv6 address as an ssh address takes it.
func bracketed(addr string) string {
	if strings.Contains(addr, ":") {
		return "[" + addr + "]"
	}
	return addr
}

// isLocal reports whether addr is this machine: a Unix socket directory,
// a loopback address, or an address of one of its interfaces.
func isLocal(ctx context.Context, addr string) bool {
	if strings.HasPrefix(addr, "/") || pg.IsLoopback(addr) {
		return true
	}
	ips := []net.IP{net.ParseIP(addr)}
	if ips[0] == nil {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		names, err := net.DefaultResolver.LookupHost(ctx, addr)
		if err != nil {
			return false
		}
		ips = ips[:0]
		for _, n := range names {
			ips = append(ips, net.ParseIP(n))
		}
	}
	own, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, ip := range ips {
		if ip == nil {
			continue
		}
		if ip.IsLoopback() {
			return true
		}
		for _, a := range own {
			if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
				return true
			}
		}
	}
	return false
}

// ownerOf is the name of the user owning path on this machine, or "".
func ownerOf(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return ""
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	u, err := user.LookupId(strconv.Itoa(int(sys.Uid)))
	if err != nil {
		return ""
	}
	return u.Username
}

func currentUser() string {
	u, err := user.Current()
	if err != nil {
		return ""
	}
	return u.Username
}

// debianBinDir is where Debian's packages put a major version's programs.
func debianBinDir(major int) string { return fmt.Sprintf("/usr/lib/postgresql/%d/bin", major) }

// debianDataDir is where Debian's packages put a major version's main cluster.
func debianDataDir(major int) string { return fmt.Sprintf("/var/lib/postgresql/%d/main", major) }

// binDir guesses the bin directory of a server of major version major.
// On this machine, pg_config of the same major version says where its
// programs are; elsewhere, Debian's layout.
func binDir(ctx context.Context, major int, local bool) Value {
	if local {
		if dir, v := pgConfig(ctx); dir != "" && v == major {
			if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
				return Guess(dir, fmt.Sprintf("pg_config --bindir on this machine, PostgreSQL %d", major))
			}
		}
		if _, err := os.Stat(filepath.Join(debianBinDir(major), "pg_ctl")); err == nil {
			return Guess(debianBinDir(major), fmt.Sprintf("Debian's layout for PostgreSQL %d, present on this machine", major))
		}
	}
	return Guess(debianBinDir(major), fmt.Sprintf("Debian's layout for PostgreSQL %d", major))
}

// pgConfig asks this machine's pg_config for its bin directory and major
// version; "" when there is none.
func pgConfig(ctx context.Context) (string, int) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	dir, err := exec.CommandContext(ctx, "pg_config", "--bindir").Output()
	if err != nil {
		return "", 0
	}
	ver, err := exec.CommandContext(ctx, "pg_config", "--version").Output()
	if err != nil {
		return "", 0
	}
	v := pg.MajorOfVersionText(string(ver))
	if v == 0 {
		return "", 0
	}
	return strings.TrimSpace(string(dir)), v
}

// dataDir is the data directory f says, or Debian's for its version.
func dataDir(f *facts) Value {
	if f.DataDir != "" {
		return Read(f.DataDir)
	}
	major := f.State.Major()
	return Guess(debianDataDir(major), fmt.Sprintf("Debian's layout for PostgreSQL %d: this role may not read data_directory (needs superuser or pg_read_all_settings)", major))
}
