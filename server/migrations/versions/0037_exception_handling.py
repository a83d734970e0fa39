"""The exceptions queue: an exception acknowledged (who, when) and resolved with a note (who, when, note)

Revision ID: 0037_exception_handling
Revises: 0035_console_auth
Create Date: 2026-12-07 16:15:00

Exceptions already recorded stay open: nobody has worked them in the queue.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0037_exception_handling'
down_revision = '0035_console_auth'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('handover_exceptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('acknowledged_by', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('resolved_by', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('resolution_note', sa.String(length=500), nullable=True))
        batch_op.create_index('ix_handover_exceptions_resolved_at', ['resolved_at'], unique=False)


def downgrade():
    with op.batch_alter_table('handover_exceptions', schema=None) as batch_op:
        batch_op.drop_index('ix_handover_exceptions_resolved_at')
        for column in ('resolution_note', 'resolved_at', 'resolved_by', 'acknowledged_at', 'acknowledged_by'):
            batch_op.drop_column(column)
