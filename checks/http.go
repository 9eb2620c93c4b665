package checks

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/switchover/switchover/internal/cluster"
	"github.com/switchover/switchover/internal/params"
)

func init() {
	Register(Definition{
		Kind: "http.ok",
		Doc:  "a GET of a url answers with the wanted status and, optionally, a body matching a pattern",
		Params: []params.Spec{
			{Name: "url", Type: params.String, Required: true,
				Doc: "http or https url to GET; redirects are not followed"},
			{Name: "status", Type: params.Int, Default: "200",
				Doc: "status code the answer must have"},
			{Name: "body", Type: params.String,
				Doc: "Go regular expression the first 1 MiB of the body must match"},
			{Name: "proxy", Type: params.String,
				Doc: "url of an http proxy to go through, to probe the path clients use; empty means a direct connection, whatever the environment says"},
			{Name: "insecure", Type: params.Bool, Default: "false",
				Doc: "skip verification of the server's tls certificate"},
		},
		New: newHTTPOK,
	})
}

// maxHTTPBody caps how much of an answer's body is read.
const maxHTTPBody = 1 << 20

// HTTPOK passes when a GET of URL answers with Status and, when Body is set,
// a body that matches it. It probes health endpoints such as Patroni's
// /primary or a load balancer's check; a GET changes nothing there.
type HTTPOK struct {
	URL      *url.URL
	Status   int
	Body     *regexp.Regexp // nil: any body
	Proxy    *url.URL       // nil: connect directly
	Insecure bool
}

var _ Check = (*HTTPOK)(nil)

func newHTTPOK(v params.Values) (Check, error) {
	u, err := parseHTTPURL(v.String("url"))
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	c := &HTTPOK{URL: u, Status: http.StatusOK, Insecure: v.Bool("insecure")}
	if v.Has("status") {
		s := v.Int("status")
		if s < 100 || s > 999 {
			return nil, fmt.Errorf("status %d is not an http status code", s)
		}
		c.Status = int(s)
	}
	if b := v.String("body"); b != "" {
		re, err := regexp.Compile(b)
		if err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
		c.Body = re
	}
	if p := v.String("proxy"); p != "" {
		pu, err := parseHTTPURL(p)
		if err != nil {
			return nil, fmt.Errorf("proxy: %w", err)
		}
		c.Proxy = pu
	}
	return c, nil
}

// parseHTTPURL parses an absolute http or https url with a host.
func parseHTTPURL(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q: want an http:// or https:// url", u.Redacted())
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%q has no host", u.Redacted())
	}
	return u, nil
}

// Describe implements Check.
func (c *HTTPOK) Describe(*cluster.Target) string {
	s := fmt.Sprintf("GET %s returns %d", c.URL.Redacted(), c.Status)
	if c.Body != nil {
		s += fmt.Sprintf(" with a body matching %q", c.Body.String())
	}
	if c.Proxy != nil {
		s += " via proxy " + c.Proxy.Redacted()
	}
	return s
}

// Run implements Check.
func (c *HTTPOK) Run(ctx context.Context, _ *cluster.Target) Result {
	if c.URL == nil {
		return Errored(errors.New("http.ok: no url"))
	}
	tr := &http.Transport{
		Proxy:             nil, // explicit: never the environment's proxy
		DialContext:       (&net.Dialer{}).DialContext,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: c.Insecure}, // only when the runbook asks
		DisableKeepAlives: true,
		ForceAttemptHTTP2: true,
	}
	if c.Proxy != nil {
		tr.Proxy = http.ProxyURL(c.Proxy)
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	target := c.URL.Redacted()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL.String(), nil)
	if err != nil {
		return Errored(fmt.Errorf("GET %s: %w", target, err))
	}
	req.Header.Set("User-Agent", "switchover")
	wanted := fmt.Sprintf("status %d", c.Status)
	if c.Body != nil {
		wanted += fmt.Sprintf(" and a body matching %q", c.Body.String())
	}
	via := ""
	if c.Proxy != nil {
		via = " via proxy " + c.Proxy.Redacted()
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return Failed(fmt.Sprintf("GET %s%s got no answer after %s: %s", target, via, roundDuration(time.Since(start)), httpProblem(err)), wanted)
	}
	defer resp.Body.Close()
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, maxHTTPBody))
	elapsed := time.Since(start)
	values := map[string]any{"status": resp.StatusCode, "elapsed": elapsed.String()}
	if readErr != nil {
		return Failed(fmt.Sprintf("GET %s%s answered %d in %s but reading the body broke off: %s",
			target, via, resp.StatusCode, roundDuration(elapsed), httpProblem(readErr)), wanted)
	}
	seen := fmt.Sprintf("GET %s%s answered %d in %s", target, via, resp.StatusCode, roundDuration(elapsed))
	if resp.StatusCode != c.Status {
		if loc := resp.Header.Get("Location"); loc != "" {
			seen += fmt.Sprintf(" (redirect to %s)", loc)
		}
		if ex := excerpt(body, 120); ex != "" {
			seen += ", body: " + ex
		}
		r := Failed(seen, wanted)
		r.Values = values
		return r
	}
	if c.Body != nil && !c.Body.Match(body) {
		ex := excerpt(body, 120)
		if ex == "" {
			seen += fmt.Sprintf(" with an empty body, not matching %q", c.Body.String())
		} else {
			seen += fmt.Sprintf(" with a body not matching %q: %s", c.Body.String(), ex)
		}
		r := Failed(seen, wanted)
		r.Values = values
		return r
	}
	r := Passed(seen)
	r.Values = values
	return r
}

// httpProblem says in a few words why a request got no answer.
func httpProblem(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer before the time limit"
	case errors.Is(err, context.Canceled):
		return "the request was cancelled"
	}
	return dialProblem(err)
}

// excerpt returns the start of b as one line of valid text, at most n bytes,
// with "…" when cut.
func excerpt(b []byte, n int) string {
	b = b[:min(len(b), 8*n)]
	s := strings.ToValidUTF8(string(b), "?")
	s = strings.Join(strings.FieldsFunc(s, unicode.IsSpace), " ")
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
