// Package notify tells a chat channel about a run: its milestones, posted
// as JSON to an incoming webhook (Slack, Mattermost and the like). A
// notification never holds a run up: Post only queues, one goroutine posts
// in order, each post under a short timeout with a few retries, and Close
// waits a bounded time for what is left. What could not be delivered comes
// back as a Failure, never silently dropped, and no text it produces holds
// the webhook URL's secret parts (its path, query and user info): only
// scheme://host is ever shown.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/switchover/switchover/internal/oneline"
	"github.com/switchover/switchover/internal/secret"
)

// Defaults of Options, and the bound the CLI gives Close.
const (
	DefaultTimeout = 3 * time.Second        // one post, connection and answer
	DefaultRetries = 2                      // after the first attempt
	DefaultBackoff = 250 * time.Millisecond // before the first retry; doubles
	DefaultQueue   = 32                     // messages waiting to be posted
	DefaultFlush   = 5 * time.Second        // what Close waits at exit, in all
)

// Options tune a Notifier; the zero value takes the defaults.
type Options struct {
	Timeout time.Duration // per attempt
	Retries int           // attempts after the first; negative: none
	Backoff time.Duration // the pause before the first retry, doubled for each next
	Queue   int           // how many messages may wait
	// Client posts; nil: a client of the notifier's own that takes the
	// environment's proxy and follows no redirect.
	Client *http.Client
}

// Notifier posts messages to one webhook, in the order they were given,
// from a goroutine of its own.
type Notifier struct {
	url      string // whole: never shown
	endpoint string // scheme://host: what messages show
	red      *secret.Redactor
	client   *http.Client
	o        Options

	queue  chan queued
	ctx    context.Context // cancelled when Close runs out of time
	cancel context.CancelFunc
	done   chan struct{} // closed when the goroutine has stopped

	mu       sync.Mutex
	closed   bool
	next     uint64
	pending  map[uint64]Message // posted, not yet delivered or failed
	sent     int
	failures []Failure
	down     bool // the last message failed every attempt: the next gets one
}

type queued struct {
	id uint64
	m  Message
}

// Failure is a message that was not delivered, and why. Reason holds no
// secret part of the webhook URL.
type Failure struct {
	Event    string // the milestone (Message.Event)
	Step     string // the step it names, if any
	Attempts int    // posts tried; 0 when it was never posted
	Reason   string
}

// String says it in one line, for a person.
func (f Failure) String() string {
	if f.Attempts == 0 {
		return fmt.Sprintf("%s: %s", f.Event, f.Reason)
	}
	return fmt.Sprintf("%s: %s (%d attempt%s)", f.Event, f.Reason, f.Attempts, plural(f.Attempts))
}

// Report is what Close says of all the messages posted.
type Report struct {
	Endpoint string // scheme://host
	Sent     int
	Failed   []Failure // in the order they failed
}

// errGaveUp is why a message was cut off when Close ran out of time.
var errGaveUp = errors.New("the flush at exit ran out of time")

// New checks the webhook URL and starts the goroutine that posts. Its
// errors never show the URL beyond its scheme.
func New(rawURL string, o Options) (*Notifier, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Retries == 0 {
		o.Retries = DefaultRetries
	} else if o.Retries < 0 {
		o.Retries = 0
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	if o.Client == nil {
		o.Client = &http.Client{
			Transport:     &http.Transport{Proxy: http.ProxyFromEnvironment, TLSHandshakeTimeout: o.Timeout},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	n := &Notifier{
		url: u.String(), endpoint: Endpoint(u), red: redactorOf(u), client: o.Client, o: o,
		queue: make(chan queued, o.Queue), done: make(chan struct{}), pending: map[uint64]Message{},
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	go n.drain()
	return n, nil
}

// Check says whether rawURL is a webhook URL New accepts, without
// starting anything; its error never shows the URL beyond its scheme.
func Check(rawURL string) error {
	_, err := parseURL(rawURL)
	return err
}

func parseURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(rawURL))
	if err != nil {
		return nil, errors.New("not a URL (it is not shown here: a webhook URL holds a secret)")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("want an http or https URL, got scheme %q", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("the URL has no host")
	}
	return u, nil
}

// Endpoint is what may be shown of a webhook URL: scheme://host[:port].
func Endpoint(u *url.URL) string { return u.Scheme + "://" + u.Host }

// redactorOf knows the secret parts of u, to mask them wherever an
// error or an answer might repeat them.
func redactorOf(u *url.URL) *secret.Redactor {
	red := &secret.Redactor{}
	red.Add(u.String())
	red.Add(strings.TrimPrefix(u.String(), Endpoint(u)))
	red.Add(u.EscapedPath())
	red.Add(u.Path)
	red.Add(u.RawQuery)
	red.Add(u.Fragment)
	if u.User != nil {
		red.Add(u.User.String())
		if p, ok := u.User.Password(); ok {
			red.Add(p)
		}
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if len(seg) >= 8 && !strings.Contains(u.Host, seg) {
			red.Add(seg) // a token on its own, as an answer might quote it
		}
	}
	return red
}

// Endpoint is scheme://host of the webhook: what messages show of it.
func (n *Notifier) Endpoint() string { return n.endpoint }

// Post queues m and returns at once; it never waits for the network. A
// message that finds the queue full, or the notifier closed, is a
// Failure that Close reports.
func (n *Notifier) Post(m Message) {
	if m.Time.IsZero() {
		m.Time = time.Now()
	}
	m.Time = m.Time.UTC()
	if m.Text == "" {
		m.Text = m.Line()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		n.failures = append(n.failures, Failure{Event: m.Event, Step: m.Step, Reason: "not posted: the notifier was already closed"})
		return
	}
	n.next++
	select {
	case n.queue <- queued{id: n.next, m: m}:
		n.pending[n.next] = m
	default:
		n.failures = append(n.failures, Failure{Event: m.Event, Step: m.Step, Reason: fmt.Sprintf("not posted: %d messages were already waiting", cap(n.queue))})
	}
}

// Close stops taking messages and waits, at most within, for the queued
// ones to be delivered or to fail; then it gives up on the rest. It says
// how many were delivered and what was not.
func (n *Notifier) Close(within time.Duration) Report {
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		close(n.queue)
	}
	n.mu.Unlock()
	t := time.NewTimer(within)
	defer t.Stop()
	select {
	case <-n.done:
	case <-t.C:
		n.cancel() // the post under way returns, the rest fail at once
		select {
		case <-n.done:
		case <-time.After(time.Second):
		}
	}
	n.cancel()
	n.mu.Lock()
	defer n.mu.Unlock()
	for id := uint64(1); id <= n.next; id++ { // still pending: the goroutine did not get to them
		if m, ok := n.pending[id]; ok {
			n.failures = append(n.failures, Failure{Event: m.Event, Step: m.Step, Reason: "not posted: " + errGaveUp.Error()})
			delete(n.pending, id)
		}
	}
	return Report{Endpoint: n.endpoint, Sent: n.sent, Failed: append([]Failure(nil), n.failures...)}
}

// drain posts the queued messages in order until the queue is closed.
func (n *Notifier) drain() {
	defer close(n.done)
	for q := range n.queue {
		n.deliver(q)
	}
}

// deliver posts one message, retrying what may pass on a second try
// (no answer, a refused connection, 429, 5xx), and records the outcome.
func (n *Notifier) deliver(q queued) {
	body, err := json.Marshal(q.m)
	if err != nil {
		n.settle(q, 0, fmt.Errorf("encode: %w", err))
		return
	}
	n.mu.Lock()
	attempts := 1 + n.o.Retries
	if n.down {
		attempts = 1 // the endpoint failed every attempt last time: do not pile up delay
	}
	n.mu.Unlock()
	tried := 0
	var last error // the last attempt's own failure
	for i := 0; i < attempts; i++ {
		if i > 0 {
			pause := time.NewTimer(n.o.Backoff << (i - 1))
			select {
			case <-pause.C:
			case <-n.ctx.Done():
				pause.Stop()
			}
		}
		if n.ctx.Err() != nil {
			err = errGaveUp
			break
		}
		tried++
		var retry bool
		if retry, err = n.post(body); err == nil || !retry {
			break
		}
		if !errors.Is(err, errGaveUp) {
			last = err
		}
	}
	switch {
	case !errors.Is(err, errGaveUp):
	case last != nil:
		err = fmt.Errorf("%w; then %w", last, errGaveUp)
	case tried == 0:
		err = fmt.Errorf("not posted: %w", errGaveUp)
	}
	n.settle(q, tried, err)
}

// settle records how message q ended.
func (n *Notifier) settle(q queued, tried int, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.pending, q.id)
	if err == nil {
		n.sent++
		n.down = false
		return
	}
	n.down = true
	n.failures = append(n.failures, Failure{Event: q.m.Event, Step: q.m.Step, Attempts: tried, Reason: n.red.Redact(err.Error())})
}

// post makes one attempt; retry says whether another may succeed.
func (n *Notifier) post(body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(n.ctx, n.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url, bytes.NewReader(body))
	if err != nil {
		return false, errors.New("the request could not be made")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "switchover")
	resp, err := n.client.Do(req)
	if err != nil {
		return true, n.cause(ctx, err)
	}
	defer resp.Body.Close()
	answer, rerr := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, nil // what the body says after a 2xx does not matter
	}
	msg := "answered " + resp.Status
	if a := oneline.Of(string(answer)); a != "" && rerr == nil {
		if len(a) > 120 {
			a = a[:120] + "…"
		}
		msg += ": " + a
	}
	return resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500, errors.New(msg)
}

// cause is why a post got no answer, without the URL the HTTP client
// puts in its errors.
func (n *Notifier) cause(ctx context.Context, err error) error {
	switch {
	case n.ctx.Err() != nil:
		return errGaveUp
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("no answer within %s", n.o.Timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return errors.New(oneline.Of(err.Error()))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
