"""the SMS line: messages received (idempotency, throttling), numbers that opted out, the outbox

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa

from readings_store.models import UTCDateTime


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'sms_messages',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('message_sid', sa.String(length=64), nullable=False),
        sa.Column('from_number', sa.String(length=32), nullable=False),
        sa.Column('body', sa.String(length=1600), nullable=False),
        sa.Column('language', sa.String(length=8), nullable=True),
        sa.Column('account_id', sa.Integer(), nullable=True),
        sa.Column('outcome', sa.String(length=16), nullable=False),
        sa.Column('reply', sa.Text(), nullable=True),
        sa.Column('received_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_sms_messages_account_id_accounts')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_messages')),
        sa.UniqueConstraint('message_sid', name=op.f('uq_sms_messages_message_sid')),
    )
    op.create_index('ix_sms_messages_from_at', 'sms_messages', ['from_number', 'received_at'], unique=False)
    op.create_table(
        'sms_opt_outs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('phone', sa.String(length=32), nullable=False),
        sa.Column('keyword', sa.String(length=32), nullable=False),
        sa.Column('opted_out_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_opt_outs')),
        sa.UniqueConstraint('phone', name=op.f('uq_sms_opt_outs_phone')),
    )
    op.create_table(
        'sms_outbox',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('to_number', sa.String(length=32), nullable=False),
        sa.Column('language', sa.String(length=8), nullable=False),
        sa.Column('call_id', sa.Integer(), nullable=True),
        sa.Column('account_id', sa.Integer(), nullable=True),
        sa.Column('period', sa.String(length=7), nullable=True),
        sa.Column('body', sa.Text(), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', UTCDateTime(), nullable=False),
        sa.Column('message_sid', sa.String(length=64), nullable=True),
        sa.Column('error', sa.String(length=200), nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('sent_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_sms_outbox_account_id_accounts')),
        sa.ForeignKeyConstraint(['call_id'], ['calls.id'], name=op.f('fk_sms_outbox_call_id_calls')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_outbox')),
        sa.UniqueConstraint('account_id', 'period', name='uq_sms_outbox_account_period'),
        sa.UniqueConstraint('call_id', name=op.f('uq_sms_outbox_call_id')),
        sa.UniqueConstraint('message_sid', name=op.f('uq_sms_outbox_message_sid')),
    )
    op.create_index('ix_sms_outbox_status_next', 'sms_outbox', ['status', 'next_attempt_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_sms_outbox_status_next', table_name='sms_outbox')
    op.drop_table('sms_outbox')
    op.drop_table('sms_opt_outs')
    op.drop_index('ix_sms_messages_from_at', table_name='sms_messages')
    op.drop_table('sms_messages')
