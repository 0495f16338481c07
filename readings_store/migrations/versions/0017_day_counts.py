"""call_days, reading_days: the dashboard's counts per UTC day, kept by triggers as calls and
readings change; indexes: calls without an outcome yet, refusals and resolved review items by time

Revision ID: 0017_day_counts
Revises: 0016_org_name

``readings_store.day_counts`` says what the tables hold. As for ``record_counts`` (0015), triggers
append a row of +1 or -1 changes in the same transaction as a call or a reading is inserted,
changed or deleted: a call once it has an outcome (its figures are final then), a reading always.
The tables start from a count of the rows already there, one row per day and key.
"""
from alembic import op
import sqlalchemy as sa


revision = '0017_day_counts'
down_revision = '0016_org_name'
branch_labels = None
depends_on = None

# As readings_store.call_figures and readings_store.day_counts had them when this revision was
# written (a migration keeps its own copy: the modules may change later, this revision must not).
QUESTIONS = ("reminder", "language", "region", "offer_account", "account", "meter", "register", "value", "confirm",
             "meter_serial", "org_name")
FIGURES = ("questions_reached", "questions_passed", "questions_left", "answers_speech", "answers_keypad",
           "questions_asked", "questions_reasked", "steps_logged")
COUNTS = FIGURES[3:]
HOURS = tuple(f"hour_{h:02d}" for h in range(24))
REACHED = tuple(f"reached_{q}" for q in QUESTIONS)
PASSED = tuple(f"passed_{q}" for q in QUESTIONS)
CALL_COLUMNS = ("calls", *COUNTS, *REACHED, *PASSED)
# The dashboard's refusals of a period by account, and review items resolved in a period, read from
# the indexes alone.
INDEXES = (
    ("ix_value_refusals_created_account", "value_refusals", ["created_at", "account_id", "period"]),
    ("ix_review_tasks_resolved", "review_tasks", ["resolved_at", "resolved_by", "resolution"]),
)
# A call's columns whose change changes what it adds to call_days.
CALL_CHANGES = ("started_at", "region_id", "language", "outcome", *FIGURES)


# SQLite keeps UTC times as text, "YYYY-MM-DD HH:MM:SS.ffffff" (older rows may end in "+00"):
# the day is its first 10 characters, the hour characters 12 and 13.
def _day(column: str, dialect: str) -> str:
    return f"({column} AT TIME ZONE 'UTC')::date" if dialect == "postgresql" else f"substr({column}, 1, 10)"


def _hour(column: str, dialect: str) -> str:
    if dialect == "postgresql":
        return f"CAST(extract(hour FROM {column} AT TIME ZONE 'UTC') AS integer)"
    return f"CAST(substr({column}, 12, 2) AS INTEGER)"


def _call_values(x: str, sign: str, dialect: str) -> list[str]:
    """What one call (row alias ``x``: a table alias, NEW or OLD) adds to its day's row, times
    ``sign``, in the order: day, region_id, language, outcome, HOURS, CALL_COLUMNS."""
    hour = _hour(f"{x}.started_at", dialect)
    passed = (f"(CASE WHEN {x}.outcome = 'completed' THEN ({x}.questions_passed | {x}.questions_left) "
              f"ELSE {x}.questions_passed END)")
    return [_day(f"{x}.started_at", dialect), f"{x}.region_id", f"{x}.language", f"{x}.outcome",
            *(f"CASE WHEN {hour} = {h} THEN {sign} ELSE 0 END" for h in range(24)),
            sign, *(f"{sign} * {x}.{c}" for c in COUNTS),
            *(f"{sign} * (({x}.questions_reached >> {i}) & 1)" for i in range(len(QUESTIONS))),
            *(f"{sign} * (({passed} >> {i}) & 1)" for i in range(len(QUESTIONS)))]


def _reading_values(x: str, sign: str, dialect: str) -> list[str]:
    return [_day(f"{x}.received_at", dialect), f"{x}.status", f"{x}.channel", sign]


CALL_INSERT = f"INSERT INTO call_days (day, region_id, language, outcome, {', '.join(HOURS + CALL_COLUMNS)}) "
READING_INSERT = "INSERT INTO reading_days (day, status, channel, n) "


def _sqlite_triggers() -> list[str]:
    def call(x: str, sign: str) -> str:
        return f"{CALL_INSERT}SELECT {', '.join(_call_values(x, sign, 'sqlite'))} WHERE {x}.outcome IS NOT NULL;"

    def reading(x: str, sign: str) -> str:
        return f"{READING_INSERT}VALUES ({', '.join(_reading_values(x, sign, 'sqlite'))});"

    call_changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in CALL_CHANGES)
    reading_changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in ("received_at", "status", "channel"))
    return [
        f"CREATE TRIGGER calls_days_insert AFTER INSERT ON calls WHEN NEW.outcome IS NOT NULL "
        f"BEGIN {call('NEW', '1')} END",
        f"CREATE TRIGGER calls_days_update AFTER UPDATE OF {', '.join(CALL_CHANGES)} ON calls "
        f"WHEN (OLD.outcome IS NOT NULL OR NEW.outcome IS NOT NULL) AND ({call_changed}) "
        f"BEGIN {call('OLD', '-1')} {call('NEW', '1')} END",
        f"CREATE TRIGGER calls_days_delete AFTER DELETE ON calls WHEN OLD.outcome IS NOT NULL "
        f"BEGIN {call('OLD', '-1')} END",
        f"CREATE TRIGGER readings_days_insert AFTER INSERT ON readings BEGIN {reading('NEW', '1')} END",
        f"CREATE TRIGGER readings_days_update AFTER UPDATE OF received_at, status, channel ON readings "
        f"WHEN {reading_changed} BEGIN {reading('OLD', '-1')} {reading('NEW', '1')} END",
        f"CREATE TRIGGER readings_days_delete AFTER DELETE ON readings BEGIN {reading('OLD', '-1')} END",
    ]


def _postgresql_triggers() -> list[str]:
    def call(x: str, sign: str) -> str:
        return f"{CALL_INSERT}VALUES ({', '.join(_call_values(x, sign, 'postgresql'))});"

    def reading(x: str, sign: str) -> str:
        return f"{READING_INSERT}VALUES ({', '.join(_reading_values(x, sign, 'postgresql'))});"

    call_changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in CALL_CHANGES)
    reading_changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in ("received_at", "status", "channel"))
    return [
        "CREATE FUNCTION calls_days_counted() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.outcome IS NOT NULL THEN {call('OLD', '-1')} END IF; "
        f"IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.outcome IS NOT NULL THEN {call('NEW', '1')} END IF; "
        "RETURN NULL; END $$",
        "CREATE TRIGGER calls_days AFTER INSERT OR DELETE ON calls FOR EACH ROW EXECUTE FUNCTION calls_days_counted()",
        f"CREATE TRIGGER calls_days_update AFTER UPDATE OF {', '.join(CALL_CHANGES)} ON calls FOR EACH ROW "
        f"WHEN ((OLD.outcome IS NOT NULL OR NEW.outcome IS NOT NULL) AND ({call_changed})) "
        "EXECUTE FUNCTION calls_days_counted()",
        "CREATE FUNCTION readings_days_counted() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF TG_OP IN ('UPDATE', 'DELETE') THEN {reading('OLD', '-1')} END IF; "
        f"IF TG_OP IN ('INSERT', 'UPDATE') THEN {reading('NEW', '1')} END IF; "
        "RETURN NULL; END $$",
        "CREATE TRIGGER readings_days AFTER INSERT OR DELETE ON readings FOR EACH ROW "
        "EXECUTE FUNCTION readings_days_counted()",
        "CREATE TRIGGER readings_days_update AFTER UPDATE OF received_at, status, channel ON readings FOR EACH ROW "
        f"WHEN ({reading_changed}) EXECUTE FUNCTION readings_days_counted()",
    ]


def _drop_triggers(dialect: str) -> list[str]:
    if dialect == "postgresql":
        return [f"DROP TRIGGER IF EXISTS {t}_days{suffix} ON {t}" for t in ("calls", "readings")
                for suffix in ("", "_update")] + \
               [f"DROP FUNCTION IF EXISTS {t}_days_counted()" for t in ("calls", "readings")]
    return [f"DROP TRIGGER IF EXISTS {t}_days_{what}" for t in ("calls", "readings")
            for what in ("insert", "update", "delete")]


def _table(name: str, key: list[sa.Column], counted: tuple[str, ...]) -> None:
    op.create_table(
        name,
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        *key,
        sa.Column('folded', sa.Boolean(), server_default=sa.false(), nullable=False),
        *(sa.Column(c, sa.Integer(), nullable=False) for c in counted),
        sa.PrimaryKeyConstraint('id', name=op.f(f'pk_{name}')),
    )
    op.create_index(f'ix_{name}_day', name, ['day', *(c.name for c in key)], unique=False)
    op.create_index(f'ix_{name}_unfolded', name, ['day'], unique=False,
                    sqlite_where=sa.text('NOT folded'), postgresql_where=sa.text('NOT folded'))


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    _table('call_days', [sa.Column('region_id', sa.Integer(), nullable=True),
                         sa.Column('language', sa.String(length=8), nullable=True),
                         sa.Column('outcome', sa.String(length=32), nullable=False)], HOURS + CALL_COLUMNS)
    _table('reading_days', [sa.Column('status', sa.String(length=16), nullable=False),
                            sa.Column('channel', sa.String(length=16), nullable=False)], ('n',))
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)
    op.create_index('ix_calls_unsettled', 'calls', ['started_at', 'region_id', 'language', 'outcome', *FIGURES], unique=False,
                    sqlite_where=sa.text('outcome IS NULL'), postgresql_where=sa.text('outcome IS NULL'))
    # What the rows already there add up to, one row per day and key.
    values = _call_values("c", "1", dialect)
    op.execute(f"INSERT INTO call_days (day, region_id, language, outcome, folded, {', '.join(HOURS + CALL_COLUMNS)}) "
               f"SELECT {', '.join(values[:4])}, TRUE, {', '.join(f'sum({v})' for v in values[4:])} "
               f"FROM calls c WHERE c.outcome IS NOT NULL GROUP BY {', '.join(values[:4])}")
    day = _day("r.received_at", dialect)
    op.execute(f"INSERT INTO reading_days (day, status, channel, folded, n) SELECT {day}, r.status, r.channel, TRUE, "
               f"count(*) FROM readings r GROUP BY {day}, r.status, r.channel")
    for statement in _postgresql_triggers() if dialect == "postgresql" else _sqlite_triggers():
        op.execute(statement)


def downgrade() -> None:
    for statement in _drop_triggers(op.get_bind().dialect.name):
        op.execute(statement)
    op.drop_index('ix_calls_unsettled', table_name='calls')
    for name, table, _columns in INDEXES:
        op.drop_index(name, table_name=table)
    for name in ('call_days', 'reading_days'):
        op.drop_index(f'ix_{name}_unfolded', table_name=name)
        op.drop_index(f'ix_{name}_day', table_name=name)
        op.drop_table(name)
