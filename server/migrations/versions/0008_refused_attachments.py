"""refused attachments: uploads refused for their content, so ops naming them are rejected at once

Revision ID: 0008_refused_attachments
Revises: 0006_appointments
Create Date: 2026-11-24 03:00:00

Attachments are content-addressed: bytes that hash to their name and are
refused (an unsafe SVG, not an image) can never be accepted under that name.
Remembering the refusal lets push reject an op naming it (attachment_refused)
instead of stopping the device's queue until the upload wait runs out.
"""
from alembic import op
import sqlalchemy as sa

import server.clock


revision = '0008_refused_attachments'
down_revision = '0006_appointments'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'refused_attachments',
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('code', sa.String(length=32), nullable=False),
        sa.Column('reason', sa.String(length=300), nullable=False),
        sa.Column('device_id', sa.String(length=32), nullable=True),
        sa.Column('refused_at', server.clock.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['device_id'], ['devices.id'],
                                name=op.f('fk_refused_attachments_device_id_devices')),
        sa.PrimaryKeyConstraint('sha256', name=op.f('pk_refused_attachments')),
    )


def downgrade():
    op.drop_table('refused_attachments')
