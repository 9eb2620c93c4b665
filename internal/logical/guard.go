package logical

import (
	"context"
	"fmt"
)

// The DDL guard: DDL is not replicated by logical replication, so while a
// move is pending a change of schema on either cluster would make the two
// part, and the apply stop or the cutover be refused. The guard refuses
// DDL in every session of the database, unless the session sets
// switchover.allow_ddl = on (switchover's own steps do; an operator who
// makes the same change on both clusters may too).
//
// It is two event triggers. On ddl_command_start it refuses every command
// but CREATE SCHEMA and CREATE TABLE, before it does any work (an ALTER
// TABLE that would rewrite a large table is refused at once). Those two
// are let through to ddl_command_end, where the objects they created are
// known: switchover's own (its claim creates Schema and a table there IF
// NOT EXISTS at every run) pass, and anything else is refused, the command
// rolled back.

// GuardTrigger names the guard's event trigger on ddl_command_start; the
// one on ddl_command_end is GuardTrigger + "_end".
const GuardTrigger = "switchover_ddl_guard"

// GuardEndTrigger names the guard's event trigger on ddl_command_end.
const GuardEndTrigger = GuardTrigger + "_end"

// AllowDDLSetting is the setting with which a session passes the guard.
const AllowDDLSetting = "switchover.allow_ddl"

// GuardMessage opens the error the guard raises.
const GuardMessage = "switchover: DDL is refused while a logical upgrade is pending"

// guardFunctions are the guard's trigger functions, in Schema.
var guardFunctions = `CREATE SCHEMA IF NOT EXISTS ` + Ident(Schema) + `;
CREATE OR REPLACE FUNCTION ` + QualifiedName(Schema, "ddl_guard") + `() RETURNS event_trigger LANGUAGE plpgsql AS $guard$
BEGIN
  IF coalesce(current_setting('` + AllowDDLSetting + `', true), '') = 'on' OR tg_tag IN ('CREATE SCHEMA', 'CREATE TABLE') THEN
    RETURN;
  END IF;
  RAISE EXCEPTION '` + GuardMessage + ` (%)', tg_tag
    USING HINT = 'Make the change on both clusters in a session with SET ` + AllowDDLSetting + ` = on, or lift the guard (logical.ddl_guard enabled: false).';
END
$guard$;
CREATE OR REPLACE FUNCTION ` + QualifiedName(Schema, "ddl_guard_end") + `() RETURNS event_trigger LANGUAGE plpgsql AS $guard$
DECLARE
  o record;
BEGIN
  IF coalesce(current_setting('` + AllowDDLSetting + `', true), '') = 'on' THEN
    RETURN;
  END IF;
  FOR o IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
    IF o.schema_name IS DISTINCT FROM '` + Schema + `' AND NOT (o.object_type = 'schema' AND o.object_identity = '` + Schema + `') THEN
      RAISE EXCEPTION '` + GuardMessage + ` (% %)', o.command_tag, o.object_identity
        USING HINT = 'Make the change on both clusters in a session with SET ` + AllowDDLSetting + ` = on, or lift the guard (logical.ddl_guard enabled: false).';
    END IF;
  END LOOP;
END
$guard$`

// GuardInstallSQL is what InstallGuard runs, for plans.
var GuardInstallSQL = guardFunctions + `;
CREATE EVENT TRIGGER ` + GuardTrigger + ` ON ddl_command_start EXECUTE PROCEDURE ` + QualifiedName(Schema, "ddl_guard") + `();
CREATE EVENT TRIGGER ` + GuardEndTrigger + ` ON ddl_command_end EXECUTE PROCEDURE ` + QualifiedName(Schema, "ddl_guard_end") + `()`

// GuardRemoveSQL is what RemoveGuard runs.
var GuardRemoveSQL = `DROP EVENT TRIGGER IF EXISTS ` + GuardTrigger + `;
DROP EVENT TRIGGER IF EXISTS ` + GuardEndTrigger + `;
DROP FUNCTION IF EXISTS ` + QualifiedName(Schema, "ddl_guard") + `();
DROP FUNCTION IF EXISTS ` + QualifiedName(Schema, "ddl_guard_end") + `()`

// GuardInstalled reports whether both of the guard's event triggers are
// there and enabled.
func GuardInstalled(ctx context.Context, q Querier) (bool, error) {
	var n int
	err := q.QueryRow(ctx, `SELECT count(*) FROM pg_event_trigger WHERE evtname IN ($1, $2) AND evtenabled <> 'D'`,
		GuardTrigger, GuardEndTrigger).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("read pg_event_trigger: %w", err)
	}
	return n == 2, nil
}

// InstallGuard installs the guard, or puts it right (a trigger missing or
// disabled), as one transaction. It reports whether it changed anything.
func InstallGuard(ctx context.Context, q Querier) (bool, error) {
	if ok, err := GuardInstalled(ctx, q); err != nil || ok {
		return false, err
	}
	script := "SET LOCAL " + AllowDDLSetting + " = on;\nSET LOCAL transaction_read_only = off;\n" + GuardRemoveSQL + ";\n" + GuardInstallSQL
	if err := inTransaction(ctx, q, script); err != nil {
		return false, fmt.Errorf("install the DDL guard: %w", err)
	}
	return true, nil
}

// RemoveGuard removes the guard; it reports whether there was one.
func RemoveGuard(ctx context.Context, q Querier) (bool, error) {
	var n int
	if err := q.QueryRow(ctx, `SELECT count(*) FROM pg_event_trigger WHERE evtname IN ($1, $2)`, GuardTrigger, GuardEndTrigger).Scan(&n); err != nil {
		return false, fmt.Errorf("read pg_event_trigger: %w", err)
	}
	var fn int
	if err := q.QueryRow(ctx, `SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1 AND p.proname IN ('ddl_guard', 'ddl_guard_end')`, Schema).Scan(&fn); err != nil {
		return false, fmt.Errorf("read pg_proc: %w", err)
	}
	if n == 0 && fn == 0 {
		return false, nil
	}
	if err := inTransaction(ctx, q, "SET LOCAL transaction_read_only = off;\n"+GuardRemoveSQL); err != nil {
		return false, fmt.Errorf("remove the DDL guard: %w", err)
	}
	return n > 0, nil
}

// inTransaction runs a script of statements as one transaction.
func inTransaction(ctx context.Context, q Querier, script string) error {
	if _, err := q.Exec(ctx, "BEGIN"); err != nil {
		return err
	}
	if _, err := q.Exec(ctx, script); err != nil {
		_, _ = q.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		return err
	}
	_, err := q.Exec(ctx, "COMMIT")
	return err
}

// Privileged lets the session q is on past the DDL guard and the fence
// (a fenced node's default_transaction_read_only), for switchover's own
// changes; the function it returns puts the session back.
func Privileged(ctx context.Context, q Querier) (func(), error) {
	if _, err := q.Exec(ctx, "SET "+AllowDDLSetting+" = on; SET default_transaction_read_only = off"); err != nil {
		return func() {}, fmt.Errorf("set %s and default_transaction_read_only for this session: %w", AllowDDLSetting, err)
	}
	return func() {
		_, _ = q.Exec(context.WithoutCancel(ctx), "RESET "+AllowDDLSetting+"; RESET default_transaction_read_only")
	}, nil
}
