package pg

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchover/switchover/internal/cluster"
)

// Cache keeps idle connections per connection string for one run, so the
// checks and steps that follow each other on a node do not each pay for a
// new connection: in the seconds of a switchover, connection set-up is a
// large share of the time the engine itself adds.
//
// A reused connection proves it is alive with the SET of its statement
// timeout, one round trip; a connection to a server that has since stopped
// fails that and is replaced by a new one.
type Cache struct {
	mu     sync.Mutex
	idle   map[string][]*pgx.Conn
	closed bool
}

// SessionCache returns the run's connection cache, kept in its session and
// closed with it; nil when there is no session (a test calling a check
// directly), which means a new connection each time.
func SessionCache(s *cluster.Session) *Cache {
	if s == nil {
		return nil
	}
	return s.Load("pg.cache", func() any { return &Cache{} }).(*Cache)
}

// GetVia is c.Get, or a new connection when c is nil.
func GetVia(c *Cache, ctx context.Context, conninfo string, statementTimeout time.Duration) (*pgx.Conn, error) {
	if c == nil {
		return Connect(ctx, conninfo, statementTimeout)
	}
	return c.Get(ctx, conninfo, statementTimeout)
}

// maxIdle bounds the idle connections kept per node.
const maxIdle = 4

// origin remembers which cache and key a handed-out connection belongs to.
var origin sync.Map // *pgx.Conn → cacheKey

type cacheKey struct {
	c        *Cache
	conninfo string
}

// Get returns a connection to conninfo with the given statement timeout:
// an idle one when it answers, else a new one. Give it back with Release.
func (c *Cache) Get(ctx context.Context, conninfo string, statementTimeout time.Duration) (*pgx.Conn, error) {
	for {
		conn := c.pop(conninfo)
		if conn == nil {
			break
		}
		ms := int64(0)
		if statementTimeout > 0 {
			ms = max(statementTimeout.Milliseconds(), 1)
		}
		if _, err := conn.Exec(ctx, fmt.Sprintf("SET statement_timeout = %d", ms)); err == nil {
			origin.Store(conn, cacheKey{c, conninfo})
			return conn, nil
		}
		closeQuietly(conn)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	conn, err := Connect(ctx, conninfo, statementTimeout)
	if err != nil {
		return nil, err
	}
	origin.Store(conn, cacheKey{c, conninfo})
	return conn, nil
}

func (c *Cache) pop(conninfo string) *pgx.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	list := c.idle[conninfo]
	if len(list) == 0 {
		return nil
	}
	conn := list[len(list)-1]
	c.idle[conninfo] = list[:len(list)-1]
	return conn
}

// Release gives a connection back: to the cache it came from when it is
// healthy and idle, else it is closed. It is the way to close every
// connection, cached or not.
func Release(conn *pgx.Conn) {
	if conn == nil {
		return
	}
	v, ok := origin.LoadAndDelete(conn)
	if !ok || conn.IsClosed() || conn.PgConn().TxStatus() != 'I' {
		closeQuietly(conn)
		return
	}
	k := v.(cacheKey)
	k.c.mu.Lock()
	if k.c.closed || len(k.c.idle[k.conninfo]) >= maxIdle {
		k.c.mu.Unlock()
		closeQuietly(conn)
		return
	}
	if k.c.idle == nil {
		k.c.idle = map[string][]*pgx.Conn{}
	}
	k.c.idle[k.conninfo] = append(k.c.idle[k.conninfo], conn)
	k.c.mu.Unlock()
}

// Drop closes the idle connections to conninfo: a step about to stop that
// server closes them first, so its shutdown does not wait for their
// backends to end. A nil cache has none.
func (c *Cache) Drop(conninfo string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	list := c.idle[conninfo]
	delete(c.idle, conninfo)
	c.mu.Unlock()
	for _, conn := range list {
		closeQuietly(conn)
	}
}

// Close closes every idle connection; connections given back later are
// closed too.
func (c *Cache) Close() {
	c.mu.Lock()
	idle := c.idle
	c.idle, c.closed = nil, true
	c.mu.Unlock()
	for _, list := range idle {
		for _, conn := range list {
			closeQuietly(conn)
		}
	}
}

func closeQuietly(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}
