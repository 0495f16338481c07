"""readings.export_head (PostgreSQL): the part of a reading's billing JSON that names its account,
region and meter, kept by triggers

Revision ID: 0018_export_head
Revises: 0017_day_counts

A page of the billing API joined each reading to its meter, account and region by index, two
lookups a row: on PostgreSQL that was half the time of a page (``ivr/api/README.md``, *How a
reading is written*). Now each reading keeps, in ``export_head``, its JSON text from
``,"account_number":`` to its ``"channel"`` field, exactly as ``readings_store.export`` writes it
(compact, the strings escaped by ``to_json`` as Python's ``json.dumps`` does, the value without
trailing zeros, times in UTC with ``Z``). The database writes it: when a reading is stored or one
of those fields of the reading changes, and for every reading concerned when an account's number
or region, a meter's account, serial or utility, or a region's code changes. No code writes it, so
no path can forget it. The fields that change over a reading's life (status, supersedes, export
batch) are not in it; the query adds them and the id.

SQLite is left alone: it joins by its rowid B-trees and its pull is within the goal without it.
Upgrading fills the column for the readings already there (16 s for 330,000 readings, one run).
"""
from alembic import op


revision = '0018_export_head'
down_revision = '0017_day_counts'
branch_labels = None
depends_on = None


def _time(value: str) -> str:
    """``readings_store.export.iso`` of a timestamptz, in SQL: at the offset 0 (arithmetic, no time
    zone looked up), microseconds only when there are any."""
    return (f"replace(to_char(timezone(INTERVAL '0', {value}), 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
            "'.000000Z', 'Z')")


# Positional parameters: in an SQL function a column of the same name would win over a named one.
HEAD_FUNCTION = (
    "CREATE FUNCTION readings_export_head(integer, text, numeric, text, timestamptz, timestamptz, text) "
    "RETURNS text LANGUAGE sql STABLE AS $$ "
    "SELECT ',\"account_number\":' || to_json(a.number)::text || ',\"region_code\":' || to_json(g.code)::text "
    "|| ',\"meter_serial\":' || to_json(m.serial)::text || ',\"utility\":' || to_json(m.utility)::text "
    "|| ',\"register\":' || to_json($2)::text || ',\"value\":\"' || trim_scale($3)::text "
    f"|| '\",\"period\":' || to_json($4)::text || ',\"taken_at\":\"' || {_time('$5')} "
    f"|| '\",\"received_at\":\"' || {_time('$6')} || '\",\"channel\":' || to_json($7)::text "
    "FROM meters m JOIN accounts a ON a.id = m.account_id JOIN regions g ON g.id = a.region_id "
    "WHERE m.id = $1 $$"
)
HEAD_OF = "readings_export_head({r}.meter_id, {r}.register, {r}.value, {r}.period, {r}.taken_at, {r}.received_at, {r}.channel)"
READING_FIELDS = "meter_id, register, value, period, taken_at, received_at, channel"


def _rewrite(condition: str) -> str:
    return f"UPDATE readings r SET export_head = {HEAD_OF.format(r='r')} WHERE {condition};"


# (table, the columns whose change changes its readings' heads, which readings those are)
NAMED_BY = (
    ("meters", "account_id, serial, utility", "r.meter_id = NEW.id"),
    ("accounts", "number, region_id", "r.meter_id IN (SELECT m.id FROM meters m WHERE m.account_id = NEW.id)"),
    ("regions", "code", "r.meter_id IN (SELECT m.id FROM meters m JOIN accounts a ON a.id = m.account_id "
                        "WHERE a.region_id = NEW.id)"),
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE readings ADD COLUMN export_head text")
    op.execute(HEAD_FUNCTION)
    op.execute(_rewrite("TRUE"))
    op.execute("ALTER TABLE readings ALTER COLUMN export_head SET NOT NULL")
    op.execute("CREATE FUNCTION readings_export_head_kept() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
               f"NEW.export_head := {HEAD_OF.format(r='NEW')}; RETURN NEW; END $$")
    op.execute(f"CREATE TRIGGER readings_export_head BEFORE INSERT OR UPDATE OF {READING_FIELDS} "
               "ON readings FOR EACH ROW EXECUTE FUNCTION readings_export_head_kept()")
    for table, columns, readings in NAMED_BY:
        changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in columns.split(", "))
        op.execute(f"CREATE FUNCTION {table}_export_heads_kept() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                   f"{_rewrite(readings)} RETURN NULL; END $$")
        op.execute(f"CREATE TRIGGER {table}_export_heads AFTER UPDATE OF {columns} ON {table} FOR EACH ROW "
                   f"WHEN ({changed}) EXECUTE FUNCTION {table}_export_heads_kept()")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, _columns, _readings in NAMED_BY:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_export_heads ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {table}_export_heads_kept()")
    op.execute("DROP TRIGGER IF EXISTS readings_export_head ON readings")
    op.execute("DROP FUNCTION IF EXISTS readings_export_head_kept()")
    op.execute("DROP FUNCTION IF EXISTS readings_export_head(integer, text, numeric, text, timestamptz, "
               "timestamptz, text)")
    op.execute("ALTER TABLE readings DROP COLUMN export_head")
