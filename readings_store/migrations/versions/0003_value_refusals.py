"""value refusals: values the phone line refused, counted per account and period

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 06:00:00
"""
from alembic import op
import sqlalchemy as sa
import readings_store.models


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('value_refusals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('meter_id', sa.Integer(), nullable=False),
    sa.Column('register', sa.String(length=8), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('value', sa.String(length=32), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=True),
    sa.Column('caller', sa.String(length=32), nullable=True),
    sa.Column('created_at', readings_store.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_value_refusals_account_id_accounts')),
    sa.ForeignKeyConstraint(['call_id'], ['calls.id'], name=op.f('fk_value_refusals_call_id_calls')),
    sa.ForeignKeyConstraint(['meter_id'], ['meters.id'], name=op.f('fk_value_refusals_meter_id_meters')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_value_refusals'))
    )
    with op.batch_alter_table('value_refusals', schema=None) as batch_op:
        batch_op.create_index('ix_value_refusals_account_period', ['account_id', 'period'], unique=False)
        batch_op.create_index(batch_op.f('ix_value_refusals_created_at'), ['created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('value_refusals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_value_refusals_created_at'))
        batch_op.drop_index('ix_value_refusals_account_period')

    op.drop_table('value_refusals')
