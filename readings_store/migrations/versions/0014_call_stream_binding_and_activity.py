"""calls: the media stream's one-time token and when it was opened; the call's last activity

Revision ID: 0014
Revises: 0013

``stream_token_hash`` holds the SHA-256 of the random token the call's ``<Stream>`` carries (a
``<Parameter>``); the media endpoint opens a stream only for a live call whose token it names,
once (``stream_opened_at``). ``last_activity_at`` is when the call was last answered; calls
whose status callback never came are ended by ``ivr calls sweep`` after a configured idle time.
Existing calls take their last logged step (else their start) as their last activity.
"""
from alembic import op
import sqlalchemy as sa

import readings_store.models


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


COLUMNS = ("last_activity_at", "stream_opened_at", "stream_token_hash")


def upgrade() -> None:
    # Plain ALTER TABLE ... ADD COLUMN on both databases: copying the calls table (SQLite's batch
    # mode) would trip over the rows of other tables that refer to calls.
    op.add_column('calls', sa.Column('stream_token_hash', sa.String(length=64), nullable=True))
    op.add_column('calls', sa.Column('stream_opened_at', readings_store.models.UTCDateTime(timezone=True),
                                     nullable=True))
    op.add_column('calls', sa.Column('last_activity_at', readings_store.models.UTCDateTime(timezone=True),
                                     nullable=True))
    # The last step a call logged, else its start.
    op.execute("UPDATE calls SET last_activity_at = COALESCE((SELECT max(call_steps.at) FROM call_steps "
               "WHERE call_steps.call_id = calls.id), started_at)")
    op.create_index('ix_calls_open_activity', 'calls', ['ended_at', 'last_activity_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_calls_open_activity', table_name='calls')
    for column in COLUMNS:
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f"ALTER TABLE calls DROP COLUMN {column}")  # SQLite 3.35+, no copy of the table
        else:
            op.drop_column('calls', column)
