"""manifest import and retention: the quarantine of manifest rows the import could not take, and tasks' redaction time

Revision ID: 0016_manifest_retention
Revises: 0018_pin_failures
Create Date: 2026-11-26 09:00:00

`manifest_quarantine` keeps each held-back row of an upstream manifest (file,
its sha256, row number, the row as received, reasons naming fields) until
dispatch resolves it; one row per (file sha256, row), so a re-imported file adds
none. `tasks.redacted_at` marks tasks whose recipient data the retention job
redacted; existing tasks start unredacted (the job's first run catches up).
"""
from alembic import op
import sqlalchemy as sa

import server.clock


# revision identifiers, used by Alembic.
revision = '0016_manifest_retention'
down_revision = '0018_pin_failures'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('manifest_quarantine',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('file_name', sa.String(length=255), nullable=False),
    sa.Column('file_sha256', sa.String(length=64), nullable=False),
    sa.Column('row_number', sa.Integer(), nullable=False),
    sa.Column('waybill_no', sa.String(length=100), nullable=True),
    sa.Column('raw', sa.JSON(), nullable=True),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('received_at', server.clock.UTCDateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', server.clock.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolved_by', sa.String(length=32), nullable=True),
    sa.Column('resolution_note', sa.String(length=500), nullable=True),
    sa.Column('redacted_at', server.clock.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['resolved_by'], ['staff_users.id'],
                            name=op.f('fk_manifest_quarantine_resolved_by_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_manifest_quarantine')),
    sa.UniqueConstraint('file_sha256', 'row_number', name='uq_manifest_quarantine_file_row')
    )
    with op.batch_alter_table('manifest_quarantine', schema=None) as batch_op:
        batch_op.create_index('ix_manifest_quarantine_resolved_at_id', ['resolved_at', 'id'], unique=False)

    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('redacted_at', server.clock.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_tasks_redacted_at_finished_at', ['redacted_at', 'finished_at'], unique=False)


def downgrade():
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_tasks_redacted_at_finished_at')
        batch_op.drop_column('redacted_at')
    with op.batch_alter_table('manifest_quarantine', schema=None) as batch_op:
        batch_op.drop_index('ix_manifest_quarantine_resolved_at_id')
    op.drop_table('manifest_quarantine')
