"""recordings kept no longer than needed (utterances.audio_deleted_at) and callers' numbers erased
(calls.caller_erased_at; an erased outbox row keeps no number)

Revision ID: 0013
Revises: 0012
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

KEPT = sa.text("audio_path IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table('utterances', schema=None) as batch_op:
        batch_op.add_column(sa.Column('audio_deleted_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_utterances_audio_kept', ['created_at'], unique=False,
                              sqlite_where=KEPT, postgresql_where=KEPT)
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.add_column(sa.Column('caller_erased_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('sms_outbox', schema=None) as batch_op:
        batch_op.alter_column('to_number', existing_type=sa.String(length=32), nullable=True)


def downgrade() -> None:
    # Erased outbox rows have no number to go back to.
    op.execute("DELETE FROM sms_outbox WHERE to_number IS NULL")
    with op.batch_alter_table('sms_outbox', schema=None) as batch_op:
        batch_op.alter_column('to_number', existing_type=sa.String(length=32), nullable=False)
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_column('caller_erased_at')
    with op.batch_alter_table('utterances', schema=None) as batch_op:
        batch_op.drop_index('ix_utterances_audio_kept')
        batch_op.drop_column('audio_deleted_at')
