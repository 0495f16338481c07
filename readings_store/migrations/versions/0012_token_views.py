"""API tokens limited to regions and utilities (their view); an export batch belongs to one view

Revision ID: 0012
Revises: 0011
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('api_clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('utilities', sa.JSON(), nullable=True))
    op.create_table(
        'api_client_regions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('api_client_id', sa.Integer(), nullable=False),
        sa.Column('region_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['api_client_id'], ['api_clients.id'], ondelete='CASCADE',
                                name=op.f('fk_api_client_regions_api_client_id_api_clients')),
        sa.ForeignKeyConstraint(['region_id'], ['regions.id'], name=op.f('fk_api_client_regions_region_id_regions')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_client_regions')),
        sa.UniqueConstraint('api_client_id', 'region_id', name='uq_api_client_regions_client_region'),
    )
    with op.batch_alter_table('api_client_regions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_client_regions_region_id'), ['region_id'], unique=False)
    with op.batch_alter_table('export_batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('view', sa.String(length=1000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('export_batches', schema=None) as batch_op:
        batch_op.drop_column('view')
    with op.batch_alter_table('api_client_regions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_client_regions_region_id'))
    op.drop_table('api_client_regions')
    with op.batch_alter_table('api_clients', schema=None) as batch_op:
        batch_op.drop_column('utilities')
