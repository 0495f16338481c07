"""call_steps: each turn of a call as its own row, instead of the calls.steps JSON list that every
turn rewrote whole (a long call wrote more with every turn, and the dashboard had to parse it all)

Revision ID: 0011
Revises: 0010
"""
import datetime as dt

from alembic import op
import sqlalchemy as sa

from readings_store.models import UTCDateTime


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

BATCH = 2000

calls = sa.table('calls', sa.column('id', sa.Integer), sa.column('steps', sa.JSON),
                 sa.column('language', sa.String), sa.column('region_id', sa.Integer))
steps = sa.table('call_steps', sa.column('call_id', sa.Integer), sa.column('seq', sa.Integer),
                 sa.column('at', UTCDateTime), sa.column('step', sa.String), sa.column('next', sa.String),
                 sa.column('kind', sa.String), sa.column('keys', sa.Integer), sa.column('decision', sa.String),
                 sa.column('detail', sa.String), sa.column('language', sa.String), sa.column('region_id', sa.Integer))


def _text(value, size):
    return None if value is None else str(value)[:size]


def _at(value):
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _row(call_id, seq, entry, language, region_id):
    event = entry.get("event") if isinstance(entry.get("event"), dict) else {}
    keys = event.get("keys")
    return {"call_id": call_id, "seq": seq, "at": _at(entry.get("at")), "step": _text(entry.get("step"), 32) or "",
            "next": _text(entry.get("next"), 32), "kind": _text(event.get("kind"), 16),
            "keys": keys if isinstance(keys, int) and not isinstance(keys, bool) else None,
            "decision": _text(event.get("decision"), 16),
            "detail": _text(event.get("from", event.get("answered_by")), 32),
            "language": _text(language, 8), "region_id": region_id}


def upgrade() -> None:
    op.create_table(
        'call_steps',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('call_id', sa.Integer(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('at', UTCDateTime(), nullable=False),
        sa.Column('step', sa.String(length=32), nullable=False),
        sa.Column('next', sa.String(length=32), nullable=True),
        sa.Column('kind', sa.String(length=16), nullable=True),
        sa.Column('keys', sa.Integer(), nullable=True),
        sa.Column('decision', sa.String(length=16), nullable=True),
        sa.Column('detail', sa.String(length=32), nullable=True),
        sa.Column('language', sa.String(length=8), nullable=True),
        sa.Column('region_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['call_id'], ['calls.id'], name=op.f('fk_call_steps_call_id_calls')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_call_steps')),
        sa.UniqueConstraint('call_id', 'seq', name='uq_call_steps_call_seq'),
    )
    # The calls' logged steps become rows (seq 0 the opening, then one per turn), a batch of calls at a time; the JSON is then emptied.
    bind = op.get_bind()
    last = 0
    while True:
        batch = bind.execute(sa.select(calls.c.id, calls.c.steps, calls.c.language, calls.c.region_id)
                             .where(calls.c.id > last).order_by(calls.c.id).limit(BATCH)).all()
        if not batch:
            break
        rows = [_row(call_id, seq, entry, language, region_id)
                for call_id, logged, language, region_id in batch
                for seq, entry in enumerate((e for e in (logged or []) if isinstance(e, dict)), start=0)]
        if rows:
            bind.execute(steps.insert(), rows)
        last = batch[-1][0]
    bind.execute(calls.update().values(steps=[]))


def downgrade() -> None:
    bind = op.get_bind()
    last = 0
    while True:
        ids = bind.execute(sa.select(calls.c.id).where(calls.c.id > last).order_by(calls.c.id).limit(BATCH)).scalars().all()
        if not ids:
            break
        logged: dict[int, list] = {}
        for row in bind.execute(sa.select(steps).where(steps.c.call_id.in_(ids))
                                .order_by(steps.c.call_id, steps.c.seq)).mappings():
            if row["step"] == "incoming" and row["kind"] is None:
                event = {"from": row["detail"]}
            elif row["step"] == "reminder" and row["kind"] is None:
                event = {"answered_by": row["detail"]}
            else:
                event = {"kind": row["kind"], "keys": row["keys"], "decision": row["decision"]}
            logged.setdefault(row["call_id"], []).append(
                {"at": row["at"].isoformat(), "step": row["step"], "event": event, "next": row["next"]})
        for call_id, entries in logged.items():
            bind.execute(calls.update().where(calls.c.id == call_id).values(steps=entries))
        last = ids[-1]
    op.drop_table('call_steps')
