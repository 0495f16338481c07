"""calls: the dashboard's figures of each call, kept by its turns; indexes the console counts from;
record_counts: calls, readings and export batches counted by triggers as rows change (``/metrics``)

Revision ID: 0015_volume
Revises: 0014

Each call gets the figures the dashboard sums (``readings_store.call_figures``): bit masks of the
questions it reached, passed and left, and counts of its steps by how they were answered. Existing
calls are counted from the ``call_steps`` rows their turns wrote. Indexes let the console count
from indexes alone: the calls of a period with their figures, an account's latest calls, readings
received in a period, readings of a billing period by status, a region's active accounts, and open review items by reason and kind.

``record_counts`` holds how many calls there are by outcome, readings by status and channel, and
export batches created and acknowledged, as changes to add up: triggers on those tables append a
+1 or -1 row as rows are inserted, changed and deleted, in the same transaction (appended, never a
counter updated in place: see ``RecordCount``), so a scrape of ``/metrics`` sums a few rows instead
of counting every call and reading. It starts from a count of the rows already there.
"""
from alembic import op
import sqlalchemy as sa


revision = '0015_volume'
down_revision = '0014'
branch_labels = None
depends_on = None

# As readings_store.call_figures had them when this revision was written (a migration keeps its
# own copy: the module may change later, this revision must not).
QUESTIONS = ("reminder", "language", "region", "offer_account", "account", "meter", "register", "value", "confirm")
COLUMNS = ("questions_reached", "questions_passed", "questions_left", "answers_speech", "answers_keypad",
           "questions_asked", "questions_reasked", "steps_logged")
INDEXES = (
    ("ix_calls_figures", "calls", ["started_at", "region_id", "language", "outcome", *COLUMNS]),
    ("ix_calls_account_started", "calls", ["account_id", "started_at"]),
    ("ix_readings_received", "readings", ["received_at", "status", "channel"]),
    ("ix_readings_period_status", "readings", ["period", "status", "meter_id"]),
    ("ix_accounts_region_active", "accounts", ["region_id", "active"]),
    ("ix_review_tasks_status_reason", "review_tasks", ["status", "reason", "kind", "region_id", "utility", "created_at"]),
)


def _figures_sql() -> str:
    """One correlated SELECT of a call's figures over its steps (s): a mask is the sum of the
    bits some step sets (MAX of 0/1 per bit, as neither database has a portable bitwise OR)."""
    questions = ", ".join(f"'{q}'" for q in QUESTIONS)
    is_question = f"s.step IN ({questions})"

    def mask(condition: str) -> str:
        return " + ".join(f"MAX(CASE WHEN {condition.format(q=q)} THEN {1 << i} ELSE 0 END)"
                          for i, q in enumerate(QUESTIONS))

    moved_on = "s.step = '{q}' AND s.next <> s.step AND s.next IN (" + questions + ", 'more')"
    left = "s.step = '{q}' AND s.next <> s.step AND s.next NOT IN (" + questions + ", 'more')"
    return ("SELECT " + ", ".join([
        "COALESCE(" + mask("s.step = '{q}' OR s.next = '{q}'") + ", 0)",
        "COALESCE(" + mask(moved_on) + ", 0)",
        "COALESCE(" + mask(left) + ", 0)",
        "COALESCE(SUM(CASE WHEN s.kind = 'speech' THEN 1 ELSE 0 END), 0)",
        "COALESCE(SUM(CASE WHEN s.kind = 'digits' THEN 1 ELSE 0 END), 0)",
        f"COALESCE(SUM(CASE WHEN {is_question} THEN 1 ELSE 0 END), 0)",
        f"COALESCE(SUM(CASE WHEN {is_question} AND s.next = s.step THEN 1 ELSE 0 END), 0)",
        "COUNT(*)",
    ]) + " FROM call_steps s WHERE s.call_id = calls.id")


# (family, table, the labels' SQL over a row X, the columns whose change moves a row between labels)
COUNTED = (
    ("calls", "calls", ("COALESCE(X.outcome, '')", "''"), ("outcome",)),
    ("readings", "readings", ("X.status", "X.channel"), ("status", "channel")),
)


def _sqlite_add(family: str, first: str, second: str, delta: str, when: str = "1") -> str:
    return (f"INSERT INTO record_counts (family, first, second, n) SELECT '{family}', {first}, {second}, {delta} "
            f"WHERE {when};")


def _sqlite_triggers() -> list[str]:
    out = []
    for family, table, (first, second), columns in COUNTED:
        old = [first.replace("X.", "OLD."), second.replace("X.", "OLD.")]
        new = [first.replace("X.", "NEW."), second.replace("X.", "NEW.")]
        changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in columns)
        out += [f"CREATE TRIGGER {table}_counted_insert AFTER INSERT ON {table} BEGIN "
                f"{_sqlite_add(family, *new, '1')} END",
                f"CREATE TRIGGER {table}_counted_update AFTER UPDATE OF {', '.join(columns)} ON {table} "
                f"WHEN {changed} BEGIN {_sqlite_add(family, *old, '-1')} {_sqlite_add(family, *new, '1')} END",
                f"CREATE TRIGGER {table}_counted_delete AFTER DELETE ON {table} BEGIN "
                f"{_sqlite_add(family, *old, '-1')} END"]
    out += ["CREATE TRIGGER export_batches_counted_insert AFTER INSERT ON export_batches BEGIN "
            f"{_sqlite_add('export_batches', repr('created'), repr(''), '1')} "
            f"{_sqlite_add('export_batches', repr('acknowledged'), repr(''), '1', 'NEW.acknowledged_at IS NOT NULL')} END",
            "CREATE TRIGGER export_batches_counted_update AFTER UPDATE OF acknowledged_at ON export_batches "
            "WHEN (OLD.acknowledged_at IS NULL) IS NOT (NEW.acknowledged_at IS NULL) BEGIN "
            f"{_sqlite_add('export_batches', repr('acknowledged'), repr(''), 'CASE WHEN NEW.acknowledged_at IS NULL THEN -1 ELSE 1 END')} END",
            "CREATE TRIGGER export_batches_counted_delete AFTER DELETE ON export_batches BEGIN "
            f"{_sqlite_add('export_batches', repr('created'), repr(''), '-1')} "
            f"{_sqlite_add('export_batches', repr('acknowledged'), repr(''), '-1', 'OLD.acknowledged_at IS NOT NULL')} END"]
    return out


def _postgresql_triggers() -> list[str]:
    out = ["CREATE FUNCTION record_counts_add(f text, a text, b text, d bigint) RETURNS void LANGUAGE sql AS $$ "
           "INSERT INTO record_counts (family, first, second, n) VALUES (f, a, b, d) $$"]
    for family, table, (first, second), columns in COUNTED:
        old = f"'{family}', {first.replace('X.', 'OLD.')}, {second.replace('X.', 'OLD.')}"
        new = f"'{family}', {first.replace('X.', 'NEW.')}, {second.replace('X.', 'NEW.')}"
        changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in columns)
        out += [f"CREATE FUNCTION {table}_counted() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF TG_OP IN ('UPDATE', 'DELETE') THEN PERFORM record_counts_add({old}, -1); END IF; "
                f"IF TG_OP IN ('INSERT', 'UPDATE') THEN PERFORM record_counts_add({new}, 1); END IF; "
                "RETURN NULL; END $$",
                f"CREATE TRIGGER {table}_counted AFTER INSERT OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {table}_counted()",
                f"CREATE TRIGGER {table}_counted_update AFTER UPDATE OF {', '.join(columns)} ON {table} "
                f"FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION {table}_counted()"]
    out += ["CREATE FUNCTION export_batches_counted() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF TG_OP = 'INSERT' THEN PERFORM record_counts_add('export_batches', 'created', '', 1); END IF; "
            "IF TG_OP = 'DELETE' THEN PERFORM record_counts_add('export_batches', 'created', '', -1); END IF; "
            "IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.acknowledged_at IS NOT NULL THEN "
            "PERFORM record_counts_add('export_batches', 'acknowledged', '', -1); END IF; "
            "IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.acknowledged_at IS NOT NULL THEN "
            "PERFORM record_counts_add('export_batches', 'acknowledged', '', 1); END IF; "
            "RETURN NULL; END $$",
            "CREATE TRIGGER export_batches_counted AFTER INSERT OR DELETE ON export_batches "
            "FOR EACH ROW EXECUTE FUNCTION export_batches_counted()",
            "CREATE TRIGGER export_batches_counted_update AFTER UPDATE OF acknowledged_at ON export_batches "
            "FOR EACH ROW WHEN ((OLD.acknowledged_at IS NULL) IS DISTINCT FROM (NEW.acknowledged_at IS NULL)) "
            "EXECUTE FUNCTION export_batches_counted()"]
    return out


TABLES = ("calls", "readings", "export_batches")


def _drop_triggers(dialect: str) -> list[str]:
    if dialect == "postgresql":
        return ([f"DROP TRIGGER IF EXISTS {t}_counted ON {t}" for t in TABLES]
                + [f"DROP TRIGGER IF EXISTS {t}_counted_update ON {t}" for t in TABLES]
                + [f"DROP FUNCTION IF EXISTS {t}_counted()" for t in TABLES]
                + ["DROP FUNCTION IF EXISTS record_counts_add(text, text, text, bigint)"])
    return [f"DROP TRIGGER IF EXISTS {t}_counted_{op}" for t in TABLES for op in ("insert", "update", "delete")]


def upgrade() -> None:
    # Plain ALTER TABLE ... ADD COLUMN on both databases (no copy of the calls table, which other
    # tables refer to), as 0014 does.
    for column in COLUMNS:
        op.add_column('calls', sa.Column(column, sa.Integer(), server_default='0', nullable=False))
    op.execute(f"UPDATE calls SET ({', '.join(COLUMNS)}) = ({_figures_sql()}) "
               "WHERE EXISTS (SELECT 1 FROM call_steps s WHERE s.call_id = calls.id)")
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)
    op.create_table(
        'record_counts',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('family', sa.String(length=16), nullable=False),
        sa.Column('first', sa.String(length=32), nullable=False),
        sa.Column('second', sa.String(length=32), nullable=False),
        sa.Column('n', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_record_counts')),
    )
    op.execute("INSERT INTO record_counts (family, first, second, n) "
               "SELECT 'calls', COALESCE(outcome, ''), '', count(*) FROM calls GROUP BY COALESCE(outcome, '')")
    op.execute("INSERT INTO record_counts (family, first, second, n) "
               "SELECT 'readings', status, channel, count(*) FROM readings GROUP BY status, channel")
    op.execute("INSERT INTO record_counts (family, first, second, n) "
               "SELECT 'export_batches', 'created', '', count(*) FROM export_batches")
    op.execute("INSERT INTO record_counts (family, first, second, n) "
               "SELECT 'export_batches', 'acknowledged', '', count(acknowledged_at) FROM export_batches")
    dialect = op.get_bind().dialect.name
    for statement in _postgresql_triggers() if dialect == "postgresql" else _sqlite_triggers():
        op.execute(statement)


def downgrade() -> None:
    for statement in _drop_triggers(op.get_bind().dialect.name):
        op.execute(statement)
    op.drop_table('record_counts')
    for name, table, _columns in INDEXES:
        op.drop_index(name, table_name=table)
    for column in COLUMNS:
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f"ALTER TABLE calls DROP COLUMN {column}")  # SQLite 3.35+, no copy of the table
        else:
            op.drop_column('calls', column)
