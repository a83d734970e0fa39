"""customer links: signed, expiring links to the customer confirmation page

Revision ID: 0007_customer_links
Revises: 0008_refused_attachments
Create Date: 2026-11-24 03:00:00

The token itself is never stored: only a hash of its nonce, beside the task,
the offered slots, the expiry and who issued it.
"""
from alembic import op
import sqlalchemy as sa

import server.clock


revision = '0007_customer_links'
down_revision = '0008_refused_attachments'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('customer_links',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('task_id', sa.String(length=32), nullable=False),
    sa.Column('nonce_hash', sa.String(length=64), nullable=False),
    sa.Column('slots', sa.JSON(), nullable=False),
    sa.Column('created_by', sa.String(length=32), nullable=True),
    sa.Column('created_at', server.clock.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', server.clock.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', server.clock.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['staff_users.id'],
                            name=op.f('fk_customer_links_created_by_staff_users')),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_customer_links_task_id_tasks'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_links'))
    )
    with op.batch_alter_table('customer_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_links_task_id'), ['task_id'], unique=False)


def downgrade():
    with op.batch_alter_table('customer_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_links_task_id'))
    op.drop_table('customer_links')
