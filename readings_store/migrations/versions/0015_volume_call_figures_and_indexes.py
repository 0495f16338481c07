"""calls: the dashboard's figures of each call, kept by its turns; indexes the console counts from

Revision ID: 0015_volume
Revises: 0014

Each call gets the figures the dashboard sums (``readings_store.call_figures``): bit masks of the
questions it reached, passed and left, and counts of its steps by how they were answered. Existing
calls are counted from the ``call_steps`` rows their turns wrote. Indexes let the console count
from indexes alone: the calls of a period with their figures, an account's latest calls, readings
received in a period, readings of a billing period by status, a region's active accounts, and open review items by reason and kind.
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


def upgrade() -> None:
    # Plain ALTER TABLE ... ADD COLUMN on both databases (no copy of the calls table, which other
    # tables refer to), as 0014 does.
    for column in COLUMNS:
        op.add_column('calls', sa.Column(column, sa.Integer(), server_default='0', nullable=False))
    op.execute(f"UPDATE calls SET ({', '.join(COLUMNS)}) = ({_figures_sql()}) "
               "WHERE EXISTS (SELECT 1 FROM call_steps s WHERE s.call_id = calls.id)")
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _columns in INDEXES:
        op.drop_index(name, table_name=table)
    for column in COLUMNS:
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f"ALTER TABLE calls DROP COLUMN {column}")  # SQLite 3.35+, no copy of the table
        else:
            op.drop_column('calls', column)
