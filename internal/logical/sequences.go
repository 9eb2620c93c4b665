package logical

import (
	"context"
	"fmt"
)

// Sequence is a sequence's state: what setval needs to set it exactly.
type Sequence struct {
	Schema, Name string
	LastValue    int64
	IsCalled     bool
}

// String is the sequence's qualified name.
func (s Sequence) String() string { return QualifiedName(s.Schema, s.Name) }

// ReadSequences reads every user sequence of the database q is connected
// to (not switchover's, not an extension's), each read from the sequence
// itself: last_value and is_called, which pg_sequences does not show.
func ReadSequences(ctx context.Context, q Querier) ([]Sequence, error) {
	rows, err := q.Query(ctx, `SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'S' AND c.relpersistence <> 't' AND `+userRelations+` ORDER BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("list the sequences: %w", err)
	}
	var seqs []Sequence
	for rows.Next() {
		var s Sequence
		if err := rows.Scan(&s.Schema, &s.Name); err != nil {
			rows.Close()
			return nil, err
		}
		seqs = append(seqs, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range seqs {
		if err := q.QueryRow(ctx, "SELECT last_value, is_called FROM "+seqs[i].String()).Scan(&seqs[i].LastValue, &seqs[i].IsCalled); err != nil {
			return nil, fmt.Errorf("read sequence %s: %w", seqs[i], err)
		}
	}
	return seqs, nil
}

// SetSequenceSQL is the statement that sets a sequence exactly.
const SetSequenceSQL = "SELECT setval($1::regclass, $2, $3)"

// MissingSequences names the sequences of seqs the database q is
// connected to lacks.
func MissingSequences(ctx context.Context, q Querier, seqs []Sequence) ([]string, error) {
	var missing []string
	for _, s := range seqs {
		var found bool
		if err := q.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, s.String()).Scan(&found); err != nil {
			return nil, fmt.Errorf("look for sequence %s: %w", s, err)
		}
		if !found {
			missing = append(missing, s.String())
		}
	}
	return missing, nil
}

// SetSequences sets every sequence of seqs on the database q is connected
// to, as one transaction; a sequence it lacks fails the whole, named.
func SetSequences(ctx context.Context, q Querier, seqs []Sequence) error {
	missing, err := MissingSequences(ctx, q, seqs)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("sequences missing there: %s", List(missing))
	}
	done, err := Privileged(ctx, q)
	defer done()
	if err != nil {
		return err
	}
	if _, err := q.Exec(ctx, "BEGIN"); err != nil {
		return err
	}
	for _, s := range seqs {
		if _, err := q.Exec(ctx, SetSequenceSQL, s.String(), s.LastValue, s.IsCalled); err != nil {
			_, _ = q.Exec(context.WithoutCancel(ctx), "ROLLBACK")
			return fmt.Errorf("setval %s: %w", s, err)
		}
	}
	_, err = q.Exec(ctx, "COMMIT")
	return err
}
