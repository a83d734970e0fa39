"""job runs and the scheduler lease; op results archived, attachments kept by the collector

Revision ID: 0014_job_runs
Revises: 0015_outbox_webhooks
Create Date: 2026-11-26 09:00:00

`fieldops scheduler` processes on several hosts agree on one leader through the
`scheduler_lease` row (taken or renewed by a conditional UPDATE); every job run is
recorded in `job_runs`. The op-results-archive job marks op-log rows whose stored
result it slimmed (`result_archived_at`), the attachments-gc job marks the uploads it
found referenced (`kept_at`); a partial index on each keeps the rows still to visit,
and op_log.received_at is indexed for the collector's look at recent ops.
"""
from alembic import op
import sqlalchemy as sa

import server.clock


# revision identifiers, used by Alembic.
revision = '0014_job_runs'
down_revision = '0015_outbox_webhooks'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'job_runs',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('job', sa.String(length=64), nullable=False),
        sa.Column('host', sa.String(length=255), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('started_at', server.clock.UTCDateTime(timezone=True), nullable=False),
        sa.Column('finished_at', server.clock.UTCDateTime(timezone=True), nullable=True),
        sa.Column('outcome', sa.String(length=16), nullable=True),
        sa.Column('counts', sa.JSON(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_job_runs_job_id', 'job_runs', ['job', 'id'], unique=False)
    op.create_table(
        'scheduler_lease',
        sa.Column('name', sa.String(length=32), nullable=False),
        sa.Column('holder', sa.String(length=255), nullable=True),
        sa.Column('expires_at', server.clock.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )
    with op.batch_alter_table('op_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('result_archived_at', server.clock.UTCDateTime(timezone=True), nullable=True))
    op.create_index('ix_op_log_received_at', 'op_log', ['received_at'], unique=False)
    op.create_index('ix_op_log_unarchived', 'op_log', ['received_at'], unique=False,
                    sqlite_where=sa.text('result_archived_at IS NULL'),
                    postgresql_where=sa.text('result_archived_at IS NULL'))
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kept_at', server.clock.UTCDateTime(timezone=True), nullable=True))
    op.create_index('ix_attachments_unchecked', 'attachments', ['created_at'], unique=False,
                    sqlite_where=sa.text('kept_at IS NULL'), postgresql_where=sa.text('kept_at IS NULL'))


def downgrade():
    op.drop_index('ix_attachments_unchecked', table_name='attachments')
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.drop_column('kept_at')
    op.drop_index('ix_op_log_unarchived', table_name='op_log')
    op.drop_index('ix_op_log_received_at', table_name='op_log')
    with op.batch_alter_table('op_log', schema=None) as batch_op:
        batch_op.drop_column('result_archived_at')
    op.drop_table('scheduler_lease')
    op.drop_index('ix_job_runs_job_id', table_name='job_runs')
    op.drop_table('job_runs')
