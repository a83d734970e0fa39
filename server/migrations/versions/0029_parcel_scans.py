"""Parcel scans (the parcel's journey) and a parcel's lost state

Revision ID: 0029_parcel_scans
Revises: 0028_service_promise
Create Date: 2026-12-07 10:40:00

parcel_scans: one row per event of a parcel (arrived_depot, out_for_delivery,
handed_over, returned, exception) from a handheld op, an upstream system or a
handover step, with the reported and effective times, the receipt, and the
upstream event id (unique per source) that makes an upstream retry idempotent.
parcels.lost_state: suspected_lost (the scheduler) | lost | found (dispatch).
A partial index finds the parcels in a lost state for dispatch's list.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0029_parcel_scans'
down_revision = '0028_service_promise'
branch_labels = None
depends_on = None

_UPSTREAM_ID = sa.text('upstream_event_id IS NOT NULL')
_LOST = sa.text('lost_state IS NOT NULL')


def upgrade():
    op.create_table('parcel_scans',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('parcel_no', sa.String(length=40), nullable=False),
    sa.Column('task_id', sa.String(length=32), nullable=False),
    sa.Column('event', sa.String(length=24), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('reported_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('effective_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('clock_suspect', sa.Boolean(), nullable=False),
    sa.Column('courier_id', sa.String(length=32), nullable=True),
    sa.Column('device_id', sa.String(length=32), nullable=True),
    sa.Column('upstream_id', sa.String(length=32), nullable=True),
    sa.Column('upstream_event_id', sa.String(length=64), nullable=True),
    sa.Column('upstream_digest', sa.String(length=64), nullable=True),
    sa.Column('op_id', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['courier_id'], ['couriers.id'], name=op.f('fk_parcel_scans_courier_id_couriers')),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_parcel_scans_task_id_tasks'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_parcel_scans'))
    )
    op.create_index('ix_parcel_scans_parcel_no_effective_time', 'parcel_scans', ['parcel_no', 'effective_time'])
    op.create_index('ix_parcel_scans_task_id_effective_time', 'parcel_scans', ['task_id', 'effective_time'])
    op.create_index('uq_parcel_scans_source_upstream_event_id', 'parcel_scans', ['source', 'upstream_event_id'],
                    unique=True, sqlite_where=_UPSTREAM_ID, postgresql_where=_UPSTREAM_ID)
    with op.batch_alter_table('parcels') as batch:
        batch.add_column(sa.Column('lost_state', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('lost_state_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('lost_state_by', sa.String(length=32), nullable=True))
    op.create_index('ix_parcels_lost_state', 'parcels', ['lost_state'], sqlite_where=_LOST, postgresql_where=_LOST)


def downgrade():
    op.drop_index('ix_parcels_lost_state', table_name='parcels', sqlite_where=_LOST, postgresql_where=_LOST)
    with op.batch_alter_table('parcels') as batch:
        batch.drop_column('lost_state_by')
        batch.drop_column('lost_state_at')
        batch.drop_column('lost_state')
    op.drop_index('uq_parcel_scans_source_upstream_event_id', table_name='parcel_scans',
                  sqlite_where=_UPSTREAM_ID, postgresql_where=_UPSTREAM_ID)
    op.drop_index('ix_parcel_scans_task_id_effective_time', table_name='parcel_scans')
    op.drop_index('ix_parcel_scans_parcel_no_effective_time', table_name='parcel_scans')
    op.drop_table('parcel_scans')
