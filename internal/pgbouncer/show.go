package pgbouncer

import (
	"context"
	"fmt"
	"strings"
)

// table is the answer to a SHOW command: its column names and its rows,
// each value as the console wrote it (text), NULL as "". Columns are found
// by name, never by position: PgBouncer versions add some.
type table struct {
	command string
	columns []string
	rows    [][]string
}

// show sends a SHOW command and reads its answer.
func (c *Client) show(ctx context.Context, command string) (table, error) {
	t := table{command: command}
	rows, err := c.conn.Query(ctx, command)
	if err != nil {
		return t, fmt.Errorf("%s: %w", command, err)
	}
	defer rows.Close()
	for _, f := range rows.FieldDescriptions() {
		t.columns = append(t.columns, f.Name)
	}
	for rows.Next() {
		raw := rows.RawValues()
		row := make([]string, len(raw))
		for i, v := range raw {
			row[i] = string(v)
		}
		t.rows = append(t.rows, row)
	}
	if err := rows.Err(); err != nil {
		return t, fmt.Errorf("%s: %w", command, err)
	}
	return t, nil
}

// read sends a SHOW command and parses its answer.
func read[T any](ctx context.Context, c *Client, command string, parse func(table) (T, error)) (T, error) {
	t, err := c.show(ctx, command)
	if err != nil {
		var none T
		return none, err
	}
	return parse(t)
}

// index finds the columns by name: the positions of those present, and an
// error naming the required ones missing.
func (t table) index(required []string, optional ...string) (map[string]int, error) {
	at := map[string]int{}
	for i, name := range t.columns {
		at[name] = i
	}
	var missing []string
	for _, name := range required {
		if _, ok := at[name]; !ok {
			missing = append(missing, name)
		}
	}
	switch len(missing) {
	case 0:
	case 1:
		return nil, fmt.Errorf("%s has no %s column", t.command, missing[0])
	default:
		return nil, fmt.Errorf("%s has no %s and %s columns", t.command, strings.Join(missing[:len(missing)-1], ", "), missing[len(missing)-1])
	}
	for _, name := range optional {
		if _, ok := at[name]; !ok {
			at[name] = -1
		}
	}
	return at, nil
}

// get is the value of column i of a row; "" for a column the answer lacks.
func get(row []string, i int) string {
	if i < 0 || i >= len(row) {
		return ""
	}
	return row[i]
}

// Database is one [databases] entry as SHOW DATABASES shows it.
type Database struct {
	Name     string
	Host     string // "" for the admin console, or an entry on a local socket
	Port     string
	Database string // the server database it connects to
	PoolMode string // the entry's own pool_mode; "" when it takes the default
	Paused   bool
	Disabled bool // new clients refused (DISABLE)
}

// Databases is the answer to SHOW DATABASES: every entry, in its order.
type Databases []Database

// Databases reads SHOW DATABASES.
func (c *Client) Databases(ctx context.Context) (Databases, error) {
	return read(ctx, c, "SHOW DATABASES", parseDatabases)
}

// Database reads SHOW DATABASES' entry named name; the error says when
// there is none.
func (c *Client) Database(ctx context.Context, name string) (Database, error) {
	dbs, err := c.Databases(ctx)
	if err != nil {
		return Database{}, err
	}
	return dbs.Entry(name)
}

// parseDatabases reads the rows of SHOW DATABASES. Name, host, port and
// paused are in every PgBouncer switchover works with; the others may be
// missing from older ones.
func parseDatabases(t table) (Databases, error) {
	at, err := t.index([]string{"name", "host", "port", "paused"}, "database", "pool_mode", "disabled")
	if err != nil {
		return nil, err
	}
	var out Databases
	for _, row := range t.rows {
		out = append(out, Database{
			Name: get(row, at["name"]), Host: get(row, at["host"]), Port: get(row, at["port"]),
			Database: get(row, at["database"]), PoolMode: get(row, at["pool_mode"]),
			Paused: get(row, at["paused"]) == "1", Disabled: get(row, at["disabled"]) == "1",
		})
	}
	return out, nil
}

// Entry is the entry named name; the error says there is none.
func (ds Databases) Entry(name string) (Database, error) {
	for _, d := range ds {
		if d.Name == name {
			return d, nil
		}
	}
	return Database{}, fmt.Errorf("SHOW DATABASES has no entry %s", name)
}

// User is one user as SHOW USERS shows it.
type User struct {
	Name     string
	PoolMode string // the user's own pool_mode, which wins over the database's; "" when it has none
}

// Users reads SHOW USERS. PgBouncer before 1.14 shows no pool_mode: every
// user's is "".
func (c *Client) Users(ctx context.Context) ([]User, error) {
	return read(ctx, c, "SHOW USERS", parseUsers)
}

// parseUsers reads the rows of SHOW USERS.
func parseUsers(t table) ([]User, error) {
	at, err := t.index([]string{"name"}, "pool_mode")
	if err != nil {
		return nil, err
	}
	var out []User
	for _, row := range t.rows {
		out = append(out, User{Name: get(row, at["name"]), PoolMode: get(row, at["pool_mode"])})
	}
	return out, nil
}

// Config is PgBouncer's settings as SHOW CONFIG shows them, by key: the
// values in force, e.g. Config["pool_mode"], the default pool mode.
type Config map[string]string

// Config reads SHOW CONFIG.
func (c *Client) Config(ctx context.Context) (Config, error) {
	return read(ctx, c, "SHOW CONFIG", parseConfig)
}

// parseConfig reads the rows of SHOW CONFIG.
func parseConfig(t table) (Config, error) {
	at, err := t.index([]string{"key", "value"})
	if err != nil {
		return nil, err
	}
	out := Config{}
	for _, row := range t.rows {
		out[get(row, at["key"])] = get(row, at["value"])
	}
	return out, nil
}

// State is the whole pooler's state, as SHOW STATE shows it (PgBouncer
// 1.19 and later). The zero value is a pooler that is neither paused nor
// suspended, or one that cannot say (Known is false).
type State struct {
	Known     bool // the pooler answers SHOW STATE
	Paused    bool // PAUSE of every database
	Suspended bool // SUSPEND
}

// State reads SHOW STATE. A PgBouncer older than 1.19 does not know the
// command: its State is not Known, and no error.
func (c *Client) State(ctx context.Context) (State, error) {
	t, err := c.show(ctx, "SHOW STATE")
	if unknownCommand(err) {
		return State{}, nil
	}
	if err != nil {
		return State{}, err
	}
	return parseState(t), nil
}

// parseState reads the rows of SHOW STATE: one a setting, its name then
// its value (yes or no).
func parseState(t table) State {
	st := State{Known: true}
	for _, row := range t.rows {
		if len(row) < 2 {
			continue
		}
		switch row[0] {
		case "paused":
			st.Paused = row[1] == "yes"
		case "suspended":
			st.Suspended = row[1] == "yes"
		}
	}
	return st
}
