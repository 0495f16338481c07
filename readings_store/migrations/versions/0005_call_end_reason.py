"""calls.end_reason; calls.outcome becomes one of six values

Revision ID: 0005
Revises: 0004

``calls.outcome`` was one string per way a call ended ("account_account_not_found",
"hung_up_at_value", "no_regions"...). It becomes exactly one of completed, no_reading,
transferred, gave_up, hung_up, service_not_ready (NULL while in progress), and the step and
reason that ended a transferred, gave_up or hung_up call move to ``end_reason`` as
"<step>:<reason>". A give-up is told from a transfer by the step the call's state reached
("transferred"). Downgrading writes the old strings back.
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

OUTCOMES = ("completed", "no_reading", "transferred", "gave_up", "hung_up", "service_not_ready")
# The dialog's steps, longest first: "offer_account_no_input" is offer_account's, not offer's.
STEPS = sorted(("language", "region", "region_assumed", "offer_account", "account", "meter", "register", "value",
                "confirm", "next", "ended", "transferred"), key=len, reverse=True)

calls = sa.table("calls", sa.column("id", sa.Integer), sa.column("outcome", sa.String(32)),
                 sa.column("end_reason", sa.String(64)), sa.column("state", sa.JSON))


def new_outcome(outcome: str, step: str | None) -> tuple[str, str | None]:
    """(outcome, end_reason) for an outcome string written before this revision."""
    if outcome in OUTCOMES:
        return outcome, None
    if outcome.startswith("hung_up_at_"):
        return "hung_up", f"{outcome[len('hung_up_at_'):]}:hung_up"[:64]
    transferred = step == "transferred"
    if outcome == "no_regions" and not transferred:
        return "service_not_ready", None
    prefix = next((p for p in STEPS if outcome.startswith(p + "_")), None)
    reason = f"{prefix}:{outcome[len(prefix) + 1:]}" if prefix else outcome
    return ("transferred" if transferred else "gave_up"), reason[:64]


def old_outcome(outcome: str, end_reason: str | None) -> str:
    if outcome == "hung_up":
        return f"hung_up_at_{(end_reason or 'start:').split(':', 1)[0]}"[:32]
    if outcome == "service_not_ready":
        return "no_regions"
    if outcome in ("transferred", "gave_up") and end_reason:
        if ":" not in end_reason:
            return end_reason[:32]
        step, _, reason = end_reason.partition(":")
        return (reason if reason in ("asked_operator", "no_regions", "no_meters") else f"{step}_{reason}")[:32]
    return outcome


def upgrade() -> None:
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.add_column(sa.Column('end_reason', sa.String(length=64), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.select(calls.c.id, calls.c.outcome, calls.c.state)
                        .where(calls.c.outcome.is_not(None), calls.c.outcome.not_in(OUTCOMES))).all()
    for call_id, outcome, state in rows:
        step = (state or {}).get("step") if isinstance(state, dict) else None
        value, reason = new_outcome(outcome, step)
        bind.execute(calls.update().where(calls.c.id == call_id).values(outcome=value, end_reason=reason))


def downgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(calls.c.id, calls.c.outcome, calls.c.end_reason)
                        .where(calls.c.outcome.in_(("transferred", "gave_up", "hung_up", "service_not_ready")))).all()
    for call_id, outcome, end_reason in rows:
        bind.execute(calls.update().where(calls.c.id == call_id).values(outcome=old_outcome(outcome, end_reason)))
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_column('end_reason')
