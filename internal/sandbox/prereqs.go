package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Need is one thing a sandbox needs from the machine, and the Debian package
// that provides it.
type Need struct {
	What    string // what is looked for, as a person names it
	Package string // the Debian package that provides it
	Found   string // where it was found; empty when missing
}

// Prereqs lists what a sandbox of options o needs and what of it is here.
// It only looks: nothing is installed or started.
func Prereqs(o Options) []Need {
	var needs []Need
	add := func(what, pkg string, find func() (string, error)) {
		where, err := find()
		if err != nil {
			where = ""
		}
		needs = append(needs, Need{What: what, Package: pkg, Found: where})
	}
	add("PostgreSQL server (initdb, pg_ctl, postgres)", "postgresql", func() (string, error) { return FindBinDir(o.BinDir) })
	add("PgBouncer", "pgbouncer", findPgBouncer)
	if o.Manager == ManagerPatroni {
		add("Patroni", "patroni", func() (string, error) { return exec.LookPath("patroni") })
		add("etcd", "etcd-server", func() (string, error) { return exec.LookPath("etcd") })
	}
	if o.Manager == ManagerPgAutoFailover {
		add("pg_auto_failover (pg_autoctl)", "pg-auto-failover-cli", func() (string, error) { return exec.LookPath("pg_autoctl") })
		v := "15"
		bin, err := FindBinDir(o.BinDir)
		if err == nil {
			v = filepath.Base(filepath.Dir(bin))
		}
		add("pg_auto_failover extension", "postgresql-"+v+"-auto-failover", func() (string, error) {
			if err != nil {
				return "", err
			}
			if _, err := FindPgAutoctl(bin); err != nil {
				return "", err
			}
			return "/usr/share/postgresql/" + filepath.Base(filepath.Dir(bin)) + "/extension", nil
		})
	}
	if o.Hosts {
		add("ip (network namespaces)", "iproute2", func() (string, error) { return exec.LookPath("ip") })
		add("sshd", "openssh-server", func() (string, error) { return exec.LookPath(sshdPath) })
		add("ssh, ssh-keygen", "openssh-client", func() (string, error) { return exec.LookPath("ssh-keygen") })
		add("sudo", "sudo", func() (string, error) { return exec.LookPath("sudo") })
	}
	return needs
}

// Missing returns the Debian packages of the needs not found, in order,
// each once.
func Missing(needs []Need) []string {
	var pkgs []string
	seen := map[string]bool{}
	for _, n := range needs {
		if n.Found == "" && !seen[n.Package] {
			seen[n.Package] = true
			pkgs = append(pkgs, n.Package)
		}
	}
	return pkgs
}

// InstallCommand is the one command that installs pkgs on Debian, as a
// person would type it (with sudo when not root).
func InstallCommand(pkgs []string, root bool) string {
	cmd := "apt-get install -y --no-install-recommends " + strings.Join(pkgs, " ")
	if !root {
		return "sudo " + cmd
	}
	return cmd
}

// ErrNotRoot says the missing packages can only be installed by root; the
// message carries the one command to run.
var ErrNotRoot = errors.New("installing packages needs root")

// policyRCD is Debian's hook that asks invoke-rc.d whether a package may
// start its service; exit 101 means "no". Installing with it in place puts
// the packages on the machine without starting a server of theirs.
const policyRCD = "/usr/sbin/policy-rc.d"

// Install installs pkgs with apt-get without starting their services. It
// needs root: otherwise it returns ErrNotRoot, naming the command to run. An
// existing policy-rc.d is left as it was (it already decides); one this
// function writes is removed again. log receives what is done.
func Install(ctx context.Context, pkgs []string, log func(string, ...any)) error {
	if len(pkgs) == 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: run `%s`, then again", ErrNotRoot, InstallCommand(pkgs, false))
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("installing %s: apt-get not found: install them with this system's package manager", strings.Join(pkgs, " "))
	}
	if _, err := os.Stat(policyRCD); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(policyRCD, []byte("#!/bin/sh\n# written while packages are installed without starting their services\nexit 101\n"), 0o755); err != nil {
			return fmt.Errorf("installing %s: write %s: %w", strings.Join(pkgs, " "), policyRCD, err)
		}
		defer os.Remove(policyRCD)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	steps := [][]string{
		{"apt-get", "update", "-qq"},
		append([]string{"apt-get", "install", "-y", "-qq", "--no-install-recommends",
			"-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"}, pkgs...),
	}
	for _, args := range steps {
		log("%s", strings.Join(args, " "))
		c := exec.CommandContext(ctx, args[0], args[1:]...)
		c.Env = env
		if out, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("installing %s: %s: %w\n%s", strings.Join(pkgs, " "), strings.Join(args[:2], " "), err, lastLines(string(out), 10))
		}
	}
	return nil
}
