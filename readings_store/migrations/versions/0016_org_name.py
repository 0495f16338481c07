"""regions: whether a company's caller is asked to say the organisation's name (recorded for operators)

Revision ID: 0016_org_name
Revises: 0015_volume

``regions.ask_org_name``: when true, a caller identified for a company account (kind ``company``)
is asked to say the organisation's name after the tone; the recording is kept with the call like
a spoken answer. Off for every region already there.
"""
from alembic import op
import sqlalchemy as sa


revision = '0016_org_name'
down_revision = '0015_volume'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('regions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ask_org_name', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('regions', schema=None) as batch_op:
        batch_op.drop_column('ask_org_name')
