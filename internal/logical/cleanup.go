package logical

import (
	"context"
	"fmt"
)

// DropSubscription drops a subscription and, when its publisher answers,
// its slot there (DROP SUBSCRIPTION does both). When the publisher cannot
// be reached, the subscription is dropped without its slot (disabled, its
// slot_name set to NONE first), and the slot left on the publisher is
// named in what it says. It says what it did, "" when there was no such
// subscription.
func DropSubscription(ctx context.Context, q Querier, name string) (string, error) {
	s, err := ReadSubscription(ctx, q, name)
	if err != nil || s == nil {
		return "", err
	}
	done, err := Privileged(ctx, q)
	defer done()
	if err != nil {
		return "", err
	}
	id := Ident(name)
	if _, err := q.Exec(ctx, "DROP SUBSCRIPTION "+id); err == nil {
		if s.Slot == "" {
			return fmt.Sprintf("subscription %s dropped (it had no slot)", name), nil
		}
		return fmt.Sprintf("subscription %s dropped, with its slot %s on its publisher", name, s.Slot), nil
	} else if s.Slot == "" {
		return "", fmt.Errorf("drop subscription %s: %w", name, err)
	} else {
		first := err
		for _, stmt := range []string{"ALTER SUBSCRIPTION " + id + " DISABLE", "ALTER SUBSCRIPTION " + id + " SET (slot_name = NONE)", "DROP SUBSCRIPTION " + id} {
			if _, err := q.Exec(ctx, stmt); err != nil {
				return "", fmt.Errorf("drop subscription %s (%v), then %s: %w", name, first, stmt, err)
			}
		}
		return fmt.Sprintf("subscription %s dropped; its slot %s on its publisher was not (%v): drop it there (logical.cleanup with slot: %s on that node)", name, s.Slot, first, s.Slot), nil
	}
}

// DropPublication drops a publication; it reports whether there was one.
func DropPublication(ctx context.Context, q Querier, name string) (bool, error) {
	p, err := ReadPublication(ctx, q, name)
	if err != nil || p == nil {
		return false, err
	}
	done, err := Privileged(ctx, q)
	defer done()
	if err != nil {
		return false, err
	}
	if _, err := q.Exec(ctx, "DROP PUBLICATION "+Ident(name)); err != nil {
		return false, fmt.Errorf("drop publication %s: %w", name, err)
	}
	return true, nil
}

// DropSlot drops a replication slot that no WAL sender uses; it reports
// whether there was one.
func DropSlot(ctx context.Context, q Querier, name string) (bool, error) {
	s, err := ReadSlot(ctx, q, name)
	if err != nil || !s.Exists {
		return false, err
	}
	if s.Active {
		return false, fmt.Errorf("slot %s is in use by a WAL sender: drop or disable its subscription first", name)
	}
	if _, err := q.Exec(ctx, "SELECT pg_drop_replication_slot($1)", name); err != nil {
		return false, fmt.Errorf("drop slot %s: %w", name, err)
	}
	return true, nil
}
