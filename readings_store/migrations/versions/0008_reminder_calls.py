"""reminder calls in the outbox: an opaque token per call, one reminder per account, period and kind

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sms_outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token', sa.String(length=43), nullable=True))
        batch_op.create_unique_constraint('uq_sms_outbox_token', ['token'])
        batch_op.drop_constraint('uq_sms_outbox_account_period', type_='unique')
        batch_op.create_unique_constraint('uq_sms_outbox_account_period_kind', ['account_id', 'period', 'kind'])


def downgrade() -> None:
    op.execute("DELETE FROM sms_outbox WHERE kind = 'call'")
    with op.batch_alter_table('sms_outbox', schema=None) as batch_op:
        batch_op.drop_constraint('uq_sms_outbox_account_period_kind', type_='unique')
        batch_op.create_unique_constraint('uq_sms_outbox_account_period', ['account_id', 'period'])
        batch_op.drop_constraint('uq_sms_outbox_token', type_='unique')
        batch_op.drop_column('token')
