"""region settings: names per language and caller ID prefixes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 06:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Server defaults fill the rows a database already has (and let SQLite add NOT NULL columns).
    with op.batch_alter_table('regions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('names', sa.JSON(), server_default='{}', nullable=False))
        batch_op.add_column(sa.Column('phone_prefixes', sa.JSON(), server_default='[]', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('regions', schema=None) as batch_op:
        batch_op.drop_column('phone_prefixes')
        batch_op.drop_column('names')
