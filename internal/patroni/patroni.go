// Package patroni is a small client for Patroni's REST API: the cluster's
// topology (/cluster), its dynamic configuration (/config), pausing and
// resuming it, and asking it for a switchover. The checks and steps of
// Patroni clusters use it; it never reads a proxy from the environment and
// never shows the API's password in an error.
package patroni

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/secret"
)

// DefaultTimeout bounds one request to one member's API, so that a member
// that does not answer leaves time to ask the next.
const DefaultTimeout = 5 * time.Second

// SwitchoverTimeout bounds the POST /switchover request: Patroni answers it
// only once the switchover is done or it gave up waiting (a dozen seconds).
const SwitchoverTimeout = 30 * time.Second

// DefaultMaximumLagOnFailover is Patroni's own default when /config does not
// set maximum_lag_on_failover.
const DefaultMaximumLagOnFailover = 1 << 20

// ErrNotSent says that a write reached no member: nothing was asked of
// Patroni, so nothing changed.
var ErrNotSent = errors.New("nothing sent")

// maxBody bounds what is read of an answer.
const maxBody = 1 << 20

// Client talks to the REST APIs of a Patroni cluster's members.
type Client struct {
	urls     []string
	username string
	password string
	// Timeout bounds each request but the switchover; DefaultTimeout when 0.
	Timeout time.Duration
	http    *http.Client
	mask    *secret.Redactor
}

// New returns a client for the inventory's manager, which must be Patroni
// with at least one REST API url.
func New(m *cluster.Manager) (*Client, error) {
	if m == nil {
		return nil, errors.New("patroni: the inventory has no manager")
	}
	if m.Kind != cluster.ManagerPatroni {
		return nil, fmt.Errorf("patroni: the inventory's manager is %q, not patroni", m.Kind)
	}
	if len(m.URLs) == 0 {
		return nil, errors.New("patroni: the inventory gives no REST API url")
	}
	c := &Client{username: m.Username, password: m.Password, mask: &secret.Redactor{}}
	c.mask.Add(m.Password)
	for _, raw := range m.URLs {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("patroni: %s is not an http or https url", Redact(raw))
		}
		if p, ok := u.User.Password(); ok {
			c.mask.Add(p)
		}
		c.urls = append(c.urls, strings.TrimRight(u.String(), "/"))
	}
	tlsConfig := &tls.Config{InsecureSkipVerify: m.Insecure} //nolint:gosec // the inventory asked for it
	if m.CAFile != "" {
		pem, err := os.ReadFile(m.CAFile)
		if err != nil {
			return nil, fmt.Errorf("patroni: ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("patroni: ca_file %s holds no PEM certificate", m.CAFile)
		}
		tlsConfig.RootCAs = pool
	}
	c.http = &http.Client{
		Transport: &http.Transport{
			Proxy:             nil, // never the environment's proxy
			DialContext:       (&net.Dialer{Timeout: DefaultTimeout}).DialContext,
			TLSClientConfig:   tlsConfig,
			DisableKeepAlives: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// ForTarget returns a client for the inventory's manager of the cluster a
// check or step acts on.
func ForTarget(t *cluster.Target) (*Client, error) {
	if t == nil || t.Cluster == nil || t.Cluster.Manager == nil {
		return nil, errors.New("the inventory has no manager (kind: patroni, urls: ...)")
	}
	return New(t.Cluster.Manager)
}

// URLs returns the members' API urls, without passwords, for messages.
func (c *Client) URLs() []string {
	out := make([]string, len(c.urls))
	for i, u := range c.urls {
		out[i] = Redact(u)
	}
	return out
}

// Redact renders a url without its password.
func Redact(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "(a malformed url)"
}

// Member is one member of the cluster as /cluster lists it.
type Member struct {
	Name     string      `json:"name"`
	Role     Role        `json:"role"`
	State    MemberState `json:"state"`
	Host     string      `json:"host"`
	Port     int         `json:"port"`
	APIURL   string      `json:"api_url"`
	Timeline int64       `json:"timeline"`
	Lag      Lag         `json:"lag"`
	Tags     Tags        `json:"tags"`
}

// IsLeader reports whether the member holds the leader lock.
func (m Member) IsLeader() bool { return m.Role.IsLeader() }

// String renders the member for messages: `pg2 replica streaming tl 3 lag 0`.
func (m Member) String() string {
	s := fmt.Sprintf("%s %s %s", m.Name, m.Role, m.State)
	if m.Timeline != 0 {
		s += fmt.Sprintf(" tl %d", m.Timeline)
	}
	if !m.IsLeader() {
		s += " lag " + m.Lag.String()
	}
	if m.Tags.NoFailover {
		s += " nofailover"
	}
	if m.Tags.NoLoadBalance {
		s += " noloadbalance"
	}
	return s
}

// Lag is a replica's lag in bytes. Patroni gives a number, or "unknown"
// when it cannot tell; Known is false then.
type Lag struct {
	Bytes int64
	Known bool
}

// UnmarshalJSON implements json.Unmarshaler.
func (l *Lag) UnmarshalJSON(b []byte) error {
	*l = Lag{}
	if n, err := strconv.ParseInt(string(b), 10, 64); err == nil {
		*l = Lag{Bytes: n, Known: true}
	}
	return nil
}

// String renders the lag: "4096" or "unknown".
func (l Lag) String() string {
	if !l.Known {
		return "unknown"
	}
	return strconv.FormatInt(l.Bytes, 10)
}

// Tags are the member's tags that matter to a switchover.
type Tags struct {
	NoFailover    Flag `json:"nofailover"`
	NoLoadBalance Flag `json:"noloadbalance"`
}

// Flag is a tag that Patroni's configuration may give as a boolean or as text.
type Flag bool

// UnmarshalJSON implements json.Unmarshaler.
func (f *Flag) UnmarshalJSON(b []byte) error {
	s := strings.ToLower(strings.Trim(string(b), `"`))
	*f = Flag(s == "true" || s == "on" || s == "yes" || s == "1")
	return nil
}

// State is what one member's API said of the cluster.
type State struct {
	URL     string   `json:"-"` // the url that answered, without a password
	Members []Member `json:"members"`
	Pause   bool     `json:"pause"`
}

// Member returns the member called name.
func (s *State) Member(name string) (Member, bool) {
	for _, m := range s.Members {
		if m.Name == name {
			return m, true
		}
	}
	return Member{}, false
}

// Leaders returns the members that hold the leader lock: one in a healthy
// cluster, none while the lock is free.
func (s *State) Leaders() []Member {
	var out []Member
	for _, m := range s.Members {
		if m.IsLeader() {
			out = append(out, m)
		}
	}
	return out
}

// String renders the members on one line for messages.
func (s *State) String() string {
	if len(s.Members) == 0 {
		return "no members"
	}
	parts := make([]string, len(s.Members))
	for i, m := range s.Members {
		parts[i] = m.String()
	}
	out := strings.Join(parts, "; ")
	if s.Pause {
		out += " (paused)"
	}
	return out
}

// Config is the dynamic configuration /config returns.
type Config struct {
	URL   string         // the url that answered, without a password
	Pause bool           // maintenance mode
	Raw   map[string]any // everything, as Patroni gave it
	// MaximumLagOnFailover is the lag in bytes above which Patroni will not
	// promote a replica; DefaultMaximumLagOnFailover when not set.
	MaximumLagOnFailover int64
	// SynchronousMode is Patroni's synchronous_mode: then it switches over
	// only to a member it lists as a synchronous standby.
	SynchronousMode bool
}

// HTTPError is an answer other than success, with Patroni's reason verbatim.
type HTTPError struct {
	Method, URL string // the URL without a password
	Status      int
	Body        string
}

// Error implements error.
func (e *HTTPError) Error() string {
	body := strings.TrimSpace(e.Body)
	if body == "" {
		body = "(no reason given)"
	}
	return fmt.Sprintf("%s %s answered %d: %s", e.Method, e.URL, e.Status, body)
}

// Cluster reads the topology from the first member's API that answers.
func (c *Client) Cluster(ctx context.Context) (*State, error) {
	var st *State
	err := c.read(ctx, "/cluster", func(where string, body []byte) error {
		st = &State{URL: where}
		return json.Unmarshal(body, st)
	})
	return st, err
}

// View is what one member's API said of the cluster, or why it did not.
type View struct {
	URL   string
	State *State
	Err   error
}

// ClusterEach reads the topology from every member's API, in order, so
// that their views can be compared.
func (c *Client) ClusterEach(ctx context.Context) []View {
	out := make([]View, len(c.urls))
	for i, base := range c.urls {
		out[i].URL = Redact(base)
		body, err := c.do(ctx, http.MethodGet, base+"/cluster", nil, c.timeout())
		if err == nil {
			st := &State{URL: out[i].URL + "/cluster"}
			if jerr := json.Unmarshal(body, st); jerr != nil {
				err = fmt.Errorf("GET %s/cluster answered 200 but not with its json: %s", out[i].URL, excerpt(body))
			} else {
				out[i].State = st
			}
		}
		out[i].Err = c.clean(err)
	}
	return out
}

// Config reads the dynamic configuration from the first member's API that
// answers.
func (c *Client) Config(ctx context.Context) (*Config, error) {
	var cfg *Config
	err := c.read(ctx, "/config", func(where string, body []byte) error {
		var raw map[string]any
		if err := json.Unmarshal(body, &raw); err != nil {
			return err
		}
		cfg = &Config{URL: where, Raw: raw, MaximumLagOnFailover: DefaultMaximumLagOnFailover}
		if p, ok := raw["pause"].(bool); ok {
			cfg.Pause = p
		}
		if n, ok := raw["maximum_lag_on_failover"].(float64); ok {
			cfg.MaximumLagOnFailover = int64(n)
		}
		switch v := raw["synchronous_mode"].(type) {
		case bool:
			cfg.SynchronousMode = v
		case string: // Patroni also takes "on", "quorum" and the like
			cfg.SynchronousMode = v != "" && v != "off" && v != "false"
		}
		return nil
	})
	return cfg, err
}

// ClaimKey is the key of the dynamic configuration that carries the claim
// of the switchover run that holds the cluster, beside the claim kept in
// PostgreSQL (internal/claim): Patroni keeps its configuration in its DCS,
// where every member and every operator's tools read it.
const ClaimKey = "switchover_claim"

// SetClaim writes claim (any JSON object) under ClaimKey in the dynamic
// configuration, or removes the key when claim is nil (PATCH /config).
func (c *Client) SetClaim(ctx context.Context, claim any) error {
	b, err := json.Marshal(map[string]any{ClaimKey: claim})
	if err != nil {
		return err
	}
	_, _, err = c.write(ctx, http.MethodPatch, "/config", b, c.timeout())
	return err
}

// Pause sets or clears maintenance mode (PATCH /config {"pause": ...}) on
// the first member's API that answers. It returns the url that answered.
func (c *Client) Pause(ctx context.Context, pause bool) (string, error) {
	body := []byte(fmt.Sprintf(`{"pause": %t}`, pause))
	where, _, err := c.write(ctx, http.MethodPatch, "/config", body, c.timeout())
	return where, err
}

// Switchover asks Patroni to hand the leader lock from leader to candidate,
// at scheduledAt when given (POST /switchover). The request goes to the
// leader's own API (its api_url in /cluster; an inventory url with the same
// host and port is used as given), as patronictl does: the member that
// takes it wakes its own loop at once, and the leader's is the loop that
// acts first, so the switchover starts up to a loop_wait sooner than when
// another member takes it. When the leader's API cannot be reached, the
// first inventory url that can takes it. It returns Patroni's answer
// verbatim; a refusal (412, 503, ...) is an *HTTPError with its reason.
func (c *Client) Switchover(ctx context.Context, leader, candidate string, scheduledAt *time.Time) (string, error) {
	req := map[string]string{"leader": leader, "candidate": candidate}
	if scheduledAt != nil {
		req["scheduled_at"] = scheduledAt.Format(time.RFC3339)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return "", err
	}
	if st, err := c.Cluster(ctx); err == nil {
		if m, ok := st.Member(leader); ok && m.APIURL != "" {
			if base, err := c.memberBase(m.APIURL); err == nil {
				answer, err := c.do(ctx, http.MethodPost, base+"/switchover", body, SwitchoverTimeout)
				if err == nil || !notConnected(err) {
					return strings.TrimSpace(string(answer)), c.clean(err)
				}
			}
		}
	}
	_, answer, err := c.write(ctx, http.MethodPost, "/switchover", body, SwitchoverTimeout)
	return strings.TrimSpace(string(answer)), err
}

// RestartRequest is the body Restart sends: no conditions (no role,
// postgres_version or restart_pending filter), so Patroni restarts now.
const RestartRequest = `{}`

// Restart asks member's own Patroni to restart its PostgreSQL (POST
// /restart on the api_url that /cluster gives for it; an inventory url with
// the same host and port is preferred, keeping its scheme). Patroni 3
// answers once PostgreSQL is up again or its start timed out, so timeout
// bounds the request. It returns the url asked and Patroni's answer
// verbatim; a refusal (503 "restart conditions are not satisfied", an
// in-progress restart, ...) is an *HTTPError with its reason.
func (c *Client) Restart(ctx context.Context, member string, timeout time.Duration) (string, string, error) {
	st, err := c.Cluster(ctx)
	if err != nil {
		return "", "", fmt.Errorf("%w: %w", err, ErrNotSent)
	}
	m, ok := st.Member(member)
	if !ok {
		return "", "", fmt.Errorf("patroni: GET %s lists no member %q (%s): %w", st.URL, member, st, ErrNotSent)
	}
	base, err := c.memberBase(m.APIURL)
	if err != nil {
		return "", "", fmt.Errorf("patroni: member %q: %w: %w", member, err, ErrNotSent)
	}
	where := Redact(base + "/restart")
	answer, err := c.do(ctx, http.MethodPost, base+"/restart", []byte(RestartRequest), timeout)
	if err != nil && notConnected(err) {
		err = fmt.Errorf("%w: %w", err, ErrNotSent)
	}
	return where, strings.TrimSpace(string(answer)), c.clean(err)
}

// memberBase turns a member's api_url (http://host:port/patroni) into the
// base url its endpoints hang from.
func (c *Client) memberBase(apiURL string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(apiURL))
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("api_url %q is not an http or https url", apiURL)
	}
	for _, base := range c.urls {
		if b, err := url.Parse(base); err == nil && b.Host == u.Host {
			return base, nil
		}
	}
	return u.Scheme + "://" + u.Host, nil
}

// SwitchoverRequest renders the request Switchover sends, for plans.
func SwitchoverRequest(leader, candidate string, scheduledAt *time.Time) string {
	s := fmt.Sprintf(`{"leader": %q, "candidate": %q`, leader, candidate)
	if scheduledAt != nil {
		s += fmt.Sprintf(`, "scheduled_at": %q`, scheduledAt.Format(time.RFC3339))
	}
	return s + "}"
}

func (c *Client) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

// read GETs path from each member in turn until one answers 200 with a
// body parse accepts.
func (c *Client) read(ctx context.Context, path string, parse func(where string, body []byte) error) error {
	var problems []string
	for _, base := range c.urls {
		where := Redact(base + path)
		body, err := c.do(ctx, http.MethodGet, base+path, nil, c.timeout())
		if err == nil {
			if perr := parse(where, body); perr == nil {
				return nil
			}
			err = fmt.Errorf("GET %s answered 200 but not with its json: %s", where, excerpt(body))
		}
		problems = append(problems, c.clean(err).Error())
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("patroni: no REST API answered: %s", strings.Join(problems, "; "))
}

// write sends a request to the first member whose API can be reached. It
// moves on to the next only when no connection was made, so a request is
// never sent twice. It returns the url that answered and the answer.
func (c *Client) write(ctx context.Context, method, path string, body []byte, timeout time.Duration) (string, []byte, error) {
	var problems []string
	for _, base := range c.urls {
		where := Redact(base + path)
		answer, err := c.do(ctx, method, base+path, body, timeout)
		if err == nil {
			return where, answer, nil
		}
		var he *HTTPError
		if errors.As(err, &he) || !notConnected(err) || ctx.Err() != nil {
			if len(problems) > 0 {
				return where, nil, fmt.Errorf("%w (before it: %s)", c.clean(err), strings.Join(problems, "; "))
			}
			return where, nil, c.clean(err)
		}
		problems = append(problems, c.clean(err).Error())
	}
	return "", nil, fmt.Errorf("patroni: no REST API could be reached (%s): %w", strings.Join(problems, "; "), ErrNotSent)
}

// notConnected reports whether err means no connection was made, so the
// request was not sent.
func notConnected(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// do sends one request and returns the body of a 2xx answer.
func (c *Client) do(ctx context.Context, method, u string, body []byte, timeout time.Duration) ([]byte, error) {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(rctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "switchover")
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.username != "" {
		req.SetBasicAuth(c.username, c.password)
	}
	where := Redact(u)
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() == nil && rctx.Err() != nil {
			return nil, fmt.Errorf("%s %s: no answer within %s", method, where, timeout)
		}
		return nil, fmt.Errorf("%s %s: %w", method, where, unwrapURL(err))
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the answer broke off: %w", method, where, unwrapURL(err))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &HTTPError{Method: method, URL: where, Status: resp.StatusCode, Body: string(answer)}
	}
	return answer, nil
}

// unwrapURL drops net/http's *url.Error, whose text repeats the url.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// clean masks the password in err's text, keeping the chain for errors.As.
func (c *Client) clean(err error) error {
	if err == nil {
		return nil
	}
	s := c.mask.Redact(err.Error())
	if s == err.Error() {
		return err
	}
	return &masked{msg: s, err: err}
}

type masked struct {
	msg string
	err error
}

func (m *masked) Error() string { return m.msg }
func (m *masked) Unwrap() error { return m.err }

// excerpt shortens an answer for messages.
func excerpt(b []byte) string {
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(b[:min(len(b), 400)]), "?")), " ")
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}
