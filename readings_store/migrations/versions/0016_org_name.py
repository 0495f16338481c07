"""regions: whether a company's caller is asked to say the organisation's name (recorded for operators)

Revision ID: 0016_org_name
Revises: 0015_volume

``regions.ask_org_name``: when true, a caller identified for a company account (kind ``company``)
is asked to say the organisation's name after the tone; the recording is kept with the call like
a spoken answer. Off for every region already there.

The dashboard counts two more questions (``readings_store.call_figures``, bits appended): a
company's meter by its serial (``meter_serial``) and the organisation's name (``org_name``). The
calls that already asked the serial question are counted again from their ``call_steps`` rows, as
their turns would count them now; the others keep their figures (the new bits are 0 for them).
"""
from alembic import op
import sqlalchemy as sa


revision = '0016_org_name'
down_revision = '0015_volume'
branch_labels = None
depends_on = None


# As readings_store.call_figures has them when this revision was written (a migration keeps its
# own copy: the module may change later, this revision must not).
QUESTIONS = ("reminder", "language", "region", "offer_account", "account", "meter", "register", "value", "confirm",
             "meter_serial", "org_name")
COLUMNS = ("questions_reached", "questions_passed", "questions_left", "answers_speech", "answers_keypad",
           "questions_asked", "questions_reasked", "steps_logged")


def _figures_sql() -> str:
    """One correlated SELECT of a call's figures over its steps (s), as 0015_volume counts them,
    with this revision's questions."""
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
    with op.batch_alter_table('regions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ask_org_name', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute(f"UPDATE calls SET ({', '.join(COLUMNS)}) = ({_figures_sql()}) WHERE EXISTS (SELECT 1 FROM call_steps s "
               "WHERE s.call_id = calls.id AND (s.step IN ('meter_serial', 'org_name') "
               "OR s.next IN ('meter_serial', 'org_name')))")


def downgrade() -> None:
    # The figures keep the appended bits: the older code reads the first nine and counts them as before.
    with op.batch_alter_table('regions', schema=None) as batch_op:
        batch_op.drop_column('ask_org_name')
