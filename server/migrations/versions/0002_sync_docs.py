"""sync docs: each synced entity's handheld JSON, materialised at write time

Revision ID: 0002_sync_docs
Revises: 0001_initial
Create Date: 2026-11-23 02:00:00

The table starts empty: pull renders any entity whose doc is missing, and
`fieldops sync-maintain` writes the missing ones.
"""
from alembic import op
import sqlalchemy as sa


revision = '0002_sync_docs'
down_revision = '0001_initial'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('sync_docs',
    sa.Column('entity', sa.String(length=32), nullable=False),
    sa.Column('entity_id', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('entity', 'entity_id', name=op.f('pk_sync_docs'))
    )


def downgrade():
    op.drop_table('sync_docs')
