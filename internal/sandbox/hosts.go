package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// PoolerHost names the pooler's host in a multi-host sandbox, beside the
// nodes' pg1, pg2..
const PoolerHost = "pgbouncer"

// sshdPath is the OpenSSH server each host of a multi-host sandbox runs.
const sshdPath = "/usr/sbin/sshd"

// Network is the private network of a multi-host sandbox: a bridge in this
// host's network namespace (the bastion, from where switchover runs) and,
// for each node and the pooler, a network namespace joined to the bridge by
// a veth pair, with an address and an sshd of its own. Every name it
// creates starts with Prefix, so two sandboxes never collide and `down`
// removes exactly what `up` made.
type Network struct {
	Prefix     string    `json:"prefix"`      // e.g. "swo3fa9": namespaces, links and bridge start with it
	Subnet     string    `json:"subnet"`      // e.g. 10.213.57.0/24, used by nothing else here
	Bastion    string    `json:"bastion"`     // the bridge's address: where switchover runs
	Bridge     string    `json:"bridge"`      // the bridge's link name
	SSHConfig  string    `json:"ssh_config"`  // the ssh client config the inventory points at
	KnownHosts string    `json:"known_hosts"` // every host's key, checked strictly
	Key        string    `json:"key"`         // the private key root logs in with
	Hosts      []NetHost `json:"hosts"`
}

// NetHost is one host of a multi-host sandbox.
type NetHost struct {
	Name  string `json:"name"`  // pg1, pg2.. or PoolerHost
	Netns string `json:"netns"` // its network namespace
	Link  string `json:"link"`  // the bastion's end of its veth pair, on the bridge
	Addr  string `json:"addr"`  // its address on the private network
}

// Host returns the host called name (a node's name or PoolerHost).
func (n *Network) Host(name string) (NetHost, bool) {
	for _, h := range n.Hosts {
		if h.Name == name {
			return h, true
		}
	}
	return NetHost{}, false
}

func (n *Network) sshDir() string           { return filepath.Dir(n.SSHConfig) }
func (n *Network) hostDir(h NetHost) string { return filepath.Join(n.sshDir(), h.Name) }
func (n *Network) sshdConfig(h NetHost) string {
	return filepath.Join(n.hostDir(h), "sshd_config")
}
func (n *Network) sshdPIDFile(h NetHost) string {
	return filepath.Join(n.hostDir(h), "sshd.pid")
}

// checkHosts says why a multi-host sandbox cannot be brought up here.
func checkHosts(o Options) error {
	if os.Geteuid() != 0 {
		return errors.New("--hosts needs root: it creates network namespaces, a bridge and veth links and runs an sshd per host; run it as root, or use the one-host sandbox (`switchover sandbox up` without --hosts), which needs none of that")
	}
	var missing []string
	for _, tool := range []string{"ip", "ssh", "ssh-keygen", "sudo", "runuser", sshdPath} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("--hosts needs %s (Debian: apt-get install iproute2 openssh-server openssh-client sudo)", strings.Join(missing, ", "))
	}
	return nil
}

// ipCmd runs ip(8) in this host's namespace (netns "") or in netns.
func ipCmd(ctx context.Context, netns string, args ...string) (string, error) {
	if netns != "" {
		args = append([]string{"-n", netns}, args...)
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, "ip", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// usedNets lists the IPv4 networks this host already has an address or a
// route in.
func usedNets(ctx context.Context) ([]*net.IPNet, error) {
	var nets []*net.IPNet
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			nets = append(nets, n)
		}
	}
	out, err := ipCmd(ctx, "", "-4", "route", "show", "table", "all")
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		dst := f[0]
		if dst == "broadcast" || dst == "local" || dst == "unreachable" || dst == "blackhole" || dst == "prohibit" {
			if len(f) < 2 {
				continue
			}
			dst = f[1]
		}
		if dst == "default" {
			continue // a default route covers everything; a more specific route wins
		}
		if !strings.Contains(dst, "/") {
			dst += "/32"
		}
		if _, n, err := net.ParseCIDR(dst); err == nil {
			nets = append(nets, n)
		}
	}
	return nets, nil
}

func overlaps(a, b *net.IPNet) bool { return a.Contains(b.IP) || b.Contains(a.IP) }

func randInt(n int64) int64 {
	v, err := rand.Int(rand.Reader, big.NewInt(n))
	if err != nil {
		return 0
	}
	return v.Int64()
}

// pickNetwork picks a prefix no namespace or link of this host uses and a
// 10.213.N.0/24 no address or route of this host covers.
func pickNetwork(ctx context.Context, dir string, names []string) (*Network, error) {
	used, err := usedNets(ctx)
	if err != nil {
		return nil, err
	}
	links, _ := ipCmd(ctx, "", "-o", "link")
	netns, _ := ipCmd(ctx, "", "netns", "list")
	var prefix string
	for try := 0; try < 50 && prefix == ""; try++ {
		b := make([]byte, 2)
		_, _ = rand.Read(b)
		p := "swo" + hex.EncodeToString(b)
		if !strings.Contains(links, p) && !strings.Contains(netns, p) {
			prefix = p
		}
	}
	if prefix == "" {
		return nil, errors.New("no free name prefix for the sandbox's namespaces and links")
	}
	var subnet *net.IPNet
	start := randInt(254)
	for i := int64(0); i < 254 && subnet == nil; i++ {
		_, cand, _ := net.ParseCIDR(fmt.Sprintf("10.213.%d.0/24", (start+i)%254+1))
		free := true
		for _, u := range used {
			if overlaps(cand, u) {
				free = false
				break
			}
		}
		if free {
			subnet = cand
		}
	}
	if subnet == nil {
		return nil, errors.New("no free 10.213.N.0/24 network: every one overlaps an address or route of this host")
	}
	ip := subnet.IP.To4()
	addr := func(last int) string { return net.IPv4(ip[0], ip[1], ip[2], byte(last)).String() }
	sshDir := filepath.Join(dir, "ssh")
	n := &Network{
		Prefix: prefix, Subnet: subnet.String(), Bastion: addr(1), Bridge: prefix + "-br",
		SSHConfig: filepath.Join(sshDir, "ssh_config"), KnownHosts: filepath.Join(sshDir, "known_hosts"), Key: filepath.Join(sshDir, "id_ed25519"),
	}
	for i, name := range names {
		link := prefix + "-" + name
		if name == PoolerHost {
			link = prefix + "-pool"
		}
		n.Hosts = append(n.Hosts, NetHost{Name: name, Netns: prefix + "-" + name, Link: link, Addr: addr(10 + i)})
	}
	return n, nil
}

// upNetwork creates the private network, one namespace per host, the keys
// and an sshd per host, and checks that each host answers over ssh as the
// servers' user. What it made is recorded first, so Down removes it even
// when this fails half-way.
func (s *Sandbox) upNetwork(ctx context.Context, log func(string, ...any)) error {
	names := []string{PoolerHost}
	for _, n := range s.Nodes {
		names = append(names, n.Name)
	}
	nw, err := pickNetwork(ctx, s.Dir, names)
	if err != nil {
		return err
	}
	s.Net = nw
	if err := s.save(); err != nil {
		return err
	}
	log("network %s (bridge %s, this host %s), namespaces and links %s-*", nw.Subnet, nw.Bridge, nw.Bastion, nw.Prefix)
	bits := strings.SplitN(nw.Subnet, "/", 2)[1]
	steps := [][]string{
		{"link", "add", nw.Bridge, "type", "bridge"},
		{"addr", "add", nw.Bastion + "/" + bits, "dev", nw.Bridge},
		{"link", "set", nw.Bridge, "up"},
	}
	for _, args := range steps {
		if _, err := ipCmd(ctx, "", args...); err != nil {
			return err
		}
	}
	for _, h := range nw.Hosts {
		peer := h.Link + "p"
		if len(peer) > 15 {
			peer = nw.Prefix + "-tmp"
		}
		for _, step := range []struct {
			netns string
			args  []string
		}{
			{"", []string{"netns", "add", h.Netns}},
			{"", []string{"link", "add", h.Link, "type", "veth", "peer", "name", peer}},
			{"", []string{"link", "set", peer, "netns", h.Netns}},
			{h.Netns, []string{"link", "set", peer, "name", "eth0"}},
			{h.Netns, []string{"addr", "add", h.Addr + "/" + bits, "dev", "eth0"}},
			{h.Netns, []string{"link", "set", "eth0", "up"}},
			{h.Netns, []string{"link", "set", "lo", "up"}},
			{"", []string{"link", "set", h.Link, "master", nw.Bridge}},
			{"", []string{"link", "set", h.Link, "up"}},
		} {
			if _, err := ipCmd(ctx, step.netns, step.args...); err != nil {
				return fmt.Errorf("host %s: %w", h.Name, err)
			}
		}
	}
	if err := s.writeSSH(ctx); err != nil {
		return err
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // sshd's privilege separation directory
		return err
	}
	for _, h := range nw.Hosts {
		if err := s.startSSHD(ctx, h); err != nil {
			return err
		}
	}
	for _, h := range nw.Hosts {
		ex, _ := s.hostOf(h.Name).Executor()
		out, err := ex.Run(ctx, "id -un")
		if err != nil {
			return fmt.Errorf("host %s: %s: %w", h.Name, ex.Where(), err)
		}
		if got := strings.TrimSpace(out.Stdout); out.ExitCode != 0 || got != s.who() {
			return fmt.Errorf("host %s: %s: `id -un` exit %d, said %q, want %q: %s", h.Name, ex.Where(), out.ExitCode, got, s.who(), out.Combined())
		}
	}
	log("hosts %s answer over ssh (config %s)", strings.Join(names, ", "), nw.SSHConfig)
	return nil
}

// writeSSH writes the keys, each host's sshd config, and the ssh client
// config and known_hosts the inventory uses.
func (s *Sandbox) writeSSH(ctx context.Context) error {
	nw := s.Net
	if err := os.MkdirAll(nw.sshDir(), 0o700); err != nil {
		return err
	}
	keygen := func(path, comment string) error {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(cctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path).CombinedOutput(); err != nil {
			return fmt.Errorf("ssh-keygen %s: %v: %s", path, err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	if err := keygen(nw.Key, "switchover sandbox "+nw.Prefix); err != nil {
		return err
	}
	pub, err := os.ReadFile(nw.Key + ".pub")
	if err != nil {
		return err
	}
	authorized := filepath.Join(nw.sshDir(), "authorized_keys")
	if err := os.WriteFile(authorized, pub, 0o600); err != nil {
		return err
	}
	var known, client strings.Builder
	fmt.Fprintf(&client, "# Written by `switchover sandbox up --hosts`: how the bastion reaches the sandbox's hosts.\n")
	for _, h := range nw.Hosts {
		if err := os.MkdirAll(nw.hostDir(h), 0o700); err != nil {
			return err
		}
		hostKey := filepath.Join(nw.hostDir(h), "host_key")
		if err := keygen(hostKey, h.Name); err != nil {
			return err
		}
		hpub, err := os.ReadFile(hostKey + ".pub")
		if err != nil {
			return err
		}
		f := strings.Fields(string(hpub))
		if len(f) < 2 {
			return fmt.Errorf("%s.pub: not a public key", hostKey)
		}
		fmt.Fprintf(&known, "%s,%s %s %s\n", h.Name, h.Addr, f[0], f[1])
		sshd := fmt.Sprintf(`# switchover sandbox: host %s, listening on its own address only
ListenAddress %s
Port 22
HostKey %s
AuthorizedKeysFile %s
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers root
UsePAM no
PidFile %s
StrictModes no
MaxStartups 100
MaxSessions 100
# Bash, as Debian builds it, reads ~/.bashrc for a command sshd starts when it
# is the top-level shell (SHLVL unset), however slow that file is (a pyenv
# init costs hundreds of ms a command). The transport's commands are not
# interactive and need none of it: a shell level of 1 makes bash a nested
# shell, which reads no startup file.
SetEnv SHLVL=1
`, h.Name, h.Addr, hostKey, authorized, nw.sshdPIDFile(h))
		if err := os.WriteFile(nw.sshdConfig(h), []byte(sshd), 0o600); err != nil {
			return err
		}
		fmt.Fprintf(&client, "Host %s\n  HostName %s\n", h.Name, h.Addr)
	}
	fmt.Fprintf(&client, `Host *
  User root
  IdentityFile %s
  IdentitiesOnly yes
  UserKnownHostsFile %s
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  CheckHostIP no
  BatchMode yes
`, nw.Key, nw.KnownHosts)
	if err := os.WriteFile(nw.KnownHosts, []byte(known.String()), 0o600); err != nil {
		return err
	}
	return os.WriteFile(nw.SSHConfig, []byte(client.String()), 0o600)
}

// startSSHD starts a host's sshd in its namespace and waits until it
// accepts connections on the host's address.
func (s *Sandbox) startSSHD(ctx context.Context, h NetHost) error {
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	logf := filepath.Join(s.Net.hostDir(h), "sshd.log")
	if out, err := exec.CommandContext(cctx, "ip", "netns", "exec", h.Netns, sshdPath, "-f", s.Net.sshdConfig(h), "-E", logf).CombinedOutput(); err != nil {
		return fmt.Errorf("host %s: start sshd: %v: %s", h.Name, err, strings.TrimSpace(string(out)))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(h.Addr, "22"), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("host %s: sshd did not listen on %s:22 within 10s (see %s): %v", h.Name, h.Addr, logf, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sshdPID returns the PID of a host's running sshd, or 0; the PID is
// trusted only when that process's command line names the host's config.
func (s *Sandbox) sshdPID(h NetHost) int {
	b, err := os.ReadFile(s.Net.sshdPIDFile(h))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || !processMatches(pid, s.Net.sshdConfig(h)) {
		return 0
	}
	return pid
}

// netnsPIDs lists the processes inside a namespace of the sandbox.
func netnsPIDs(ctx context.Context, netns string) []int {
	out, err := ipCmd(ctx, "", "netns", "pids", netns)
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(out) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids
}

// downHosts stops a multi-host sandbox: its servers and sshds by PID,
// then whatever still runs inside its namespaces (the sandbox made them:
// nothing else lives there), then removes the namespaces, links, bridge
// and directory. It goes on past a failure and reports every one.
func (s *Sandbox) downHosts(ctx context.Context) error {
	nw := s.Net
	var errs []error
	pids := s.PIDs()
	for name, pid := range pids {
		sig := syscall.SIGINT // PostgreSQL: fast shutdown
		if isPoolerProcess(name) {
			sig = syscall.SIGTERM
		}
		_ = syscall.Kill(pid, sig)
	}
	for _, h := range nw.Hosts {
		if pid := s.sshdPID(h); pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGTERM)
			pids["sshd "+h.Name] = pid
		}
	}
	if err := waitGone(ctx, pids, 30*time.Second); err != nil {
		errs = append(errs, err)
	}
	for _, h := range nw.Hosts {
		left := map[string]int{}
		for _, pid := range netnsPIDs(ctx, h.Netns) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			left[fmt.Sprintf("pid %d in %s", pid, h.Netns)] = pid
		}
		if err := waitGone(ctx, left, 10*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	links, _ := ipCmd(ctx, "", "-o", "link")
	netns, _ := ipCmd(ctx, "", "netns", "list")
	for _, h := range nw.Hosts {
		if hasWord(netns, h.Netns) {
			if _, err := ipCmd(ctx, "", "netns", "del", h.Netns); err != nil {
				errs = append(errs, err)
			}
		}
		// Removing the namespace removes the veth pair; a pair whose peer
		// never moved in is removed here.
		if hasLink(links, h.Link) {
			if _, err := ipCmd(ctx, "", "link", "del", h.Link); err != nil && linkExists(ctx, h.Link) {
				errs = append(errs, err)
			}
		}
	}
	if hasLink(links, nw.Bridge) {
		if _, err := ipCmd(ctx, "", "link", "del", nw.Bridge); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("sandbox down %s: %w (directory kept)", s.Dir, errors.Join(errs...))
	}
	if s.Dir == "" || s.Dir == "/" {
		return fmt.Errorf("refusing to remove %q", s.Dir)
	}
	return os.RemoveAll(s.Dir)
}

func hasWord(list, word string) bool {
	for _, line := range strings.Split(list, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == word {
			return true
		}
	}
	return false
}

// hasLink reports whether `ip -o link` output lists name ("N: name:" or
// "N: name@peer:").
func hasLink(list, name string) bool {
	for _, line := range strings.Split(list, "\n") {
		f := strings.Fields(line)
		if len(f) > 1 {
			l := strings.TrimSuffix(f[1], ":")
			if i := strings.IndexByte(l, '@'); i >= 0 {
				l = l[:i]
			}
			if l == name {
				return true
			}
		}
	}
	return false
}

func linkExists(ctx context.Context, name string) bool {
	_, err := ipCmd(ctx, "", "link", "show", name)
	return err == nil
}

func (s *Sandbox) netHost(name string) (NetHost, error) {
	if s.Net == nil {
		return NetHost{}, errors.New("not a multi-host sandbox (sandbox up --hosts)")
	}
	h, ok := s.Net.Host(name)
	if !ok {
		return NetHost{}, fmt.Errorf("no host %q in the sandbox", name)
	}
	return h, nil
}

// trustedNet is the network the sandbox's servers trust: loopback, or the
// private network of a multi-host sandbox.
func (s *Sandbox) trustedNet() string {
	if s.Net != nil {
		return s.Net.Subnet
	}
	return "127.0.0.1/32"
}

// bastionAddr is this host's address as the sandbox's hosts reach it:
// loopback, or in a multi-host sandbox this host's address on the private
// bridge. What watches the cluster from outside it (etcd for Patroni, the
// pg_auto_failover monitor) listens there.
func (s *Sandbox) bastionAddr() string {
	if s.Net != nil {
		return s.Net.Bastion
	}
	return "127.0.0.1"
}
