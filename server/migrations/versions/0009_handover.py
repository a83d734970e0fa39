"""handover: its state per task, every step, exceptions for dispatch, the cash ledger; tasks gain gift and PIN

Revision ID: 0009_handover
Revises: 0007_customer_links
Create Date: 2026-11-24 04:29:20

Steps and ledger entries are only ever added. The handover PIN is kept as a
salted PBKDF2 hash (what handhelds check offline) beside the clear PIN the
customer page shows.
"""
from alembic import op
import sqlalchemy as sa

import server.clock


# revision identifiers, used by Alembic.
revision = '0009_handover'
down_revision = '0007_customer_links'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('handover_exceptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.String(length=32), nullable=False),
    sa.Column('courier_id', sa.String(length=32), nullable=True),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('occurred_at', server.clock.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', server.clock.UTCDateTime(timezone=True), nullable=False),
    sa.Column('op_id', sa.String(length=64), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_handover_exceptions_task_id_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_handover_exceptions'))
    )
    with op.batch_alter_table('handover_exceptions', schema=None) as batch_op:
        batch_op.create_index('ix_handover_exceptions_day_kind_id', ['day', 'kind', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_handover_exceptions_task_id'), ['task_id'], unique=False)

    op.create_table('handover_steps',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.String(length=32), nullable=False),
    sa.Column('courier_id', sa.String(length=32), nullable=True),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=True),
    sa.Column('op_id', sa.String(length=64), nullable=True),
    sa.Column('device_time', server.clock.UTCDateTime(timezone=True), nullable=True),
    sa.Column('received_at', server.clock.UTCDateTime(timezone=True), nullable=False),
    sa.Column('lat', sa.Double(), nullable=True),
    sa.Column('lon', sa.Double(), nullable=True),
    sa.Column('clock_suspect', sa.Boolean(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_handover_steps_task_id_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_handover_steps'))
    )
    with op.batch_alter_table('handover_steps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_handover_steps_task_id'), ['task_id'], unique=False)

    op.create_table('handovers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.String(length=32), nullable=False),
    sa.Column('pin_salt', sa.String(length=32), nullable=True),
    sa.Column('pin_hash', sa.String(length=64), nullable=True),
    sa.Column('pin_iterations', sa.Integer(), nullable=True),
    sa.Column('pin_for_customer', sa.String(length=6), nullable=True),
    sa.Column('recipient_verified', sa.Boolean(), nullable=False),
    sa.Column('verify_method', sa.String(length=16), nullable=True),
    sa.Column('recipient_name', sa.String(length=100), nullable=True),
    sa.Column('recipient_relation', sa.String(length=100), nullable=True),
    sa.Column('inspection', sa.String(length=16), nullable=True),
    sa.Column('items', sa.JSON(), nullable=True),
    sa.Column('discrepancy', sa.Boolean(), nullable=False),
    sa.Column('damaged', sa.Boolean(), nullable=False),
    sa.Column('paid_amount', sa.Integer(), nullable=True),
    sa.Column('paid_method', sa.String(length=8), nullable=True),
    sa.Column('fees', sa.JSON(), nullable=True),
    sa.Column('photos', sa.JSON(), nullable=True),
    sa.Column('signed', sa.Boolean(), nullable=False),
    sa.Column('signer_name', sa.String(length=100), nullable=True),
    sa.Column('signature_sha256', sa.String(length=64), nullable=True),
    sa.Column('gift_disclosed', sa.Boolean(), nullable=False),
    sa.Column('refusal_reason', sa.String(length=16), nullable=True),
    sa.Column('alternate_place', sa.String(length=16), nullable=True),
    sa.Column('authorization', sa.JSON(), nullable=True),
    sa.Column('consent_place', sa.String(length=16), nullable=True),
    sa.Column('consent_at', server.clock.UTCDateTime(timezone=True), nullable=True),
    sa.Column('not_at_address', sa.Boolean(), nullable=False),
    sa.Column('distance_m', sa.Double(), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('completed_at', server.clock.UTCDateTime(timezone=True), nullable=True),
    sa.Column('completed_received_at', server.clock.UTCDateTime(timezone=True), nullable=True),
    sa.Column('completed_op_id', sa.String(length=64), nullable=True),
    sa.Column('courier_id', sa.String(length=32), nullable=True),
    sa.Column('updated_at', server.clock.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_handovers_task_id_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_handovers')),
    sa.UniqueConstraint('task_id', name=op.f('uq_handovers_task_id'))
    )
    op.create_table('ledger_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('courier_id', sa.String(length=32), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('method', sa.String(length=8), nullable=True),
    sa.Column('task_id', sa.String(length=32), nullable=True),
    sa.Column('op_id', sa.String(length=64), nullable=True),
    sa.Column('corrects_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.String(length=300), nullable=True),
    sa.Column('created_by', sa.String(length=32), nullable=True),
    sa.Column('device_time', server.clock.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', server.clock.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['corrects_id'], ['ledger_entries.id'], name=op.f('fk_ledger_entries_corrects_id_ledger_entries')),
    sa.ForeignKeyConstraint(['courier_id'], ['couriers.id'], name=op.f('fk_ledger_entries_courier_id_couriers')),
    sa.ForeignKeyConstraint(['created_by'], ['staff_users.id'], name=op.f('fk_ledger_entries_created_by_staff_users')),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_ledger_entries_task_id_tasks')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entries'))
    )
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_entries_courier_day', ['courier_id', 'day'], unique=False)

    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('gift_description', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('pin_required', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('return_of_id', sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f('ix_tasks_return_of_id'), ['return_of_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_tasks_return_of_id_tasks'), 'tasks', ['return_of_id'], ['id'])



def downgrade():
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_tasks_return_of_id_tasks'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_tasks_return_of_id'))
        batch_op.drop_column('return_of_id')
        batch_op.drop_column('pin_required')
        batch_op.drop_column('gift_description')

    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_entries_courier_day')

    op.drop_table('ledger_entries')
    op.drop_table('handovers')
    with op.batch_alter_table('handover_steps', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_handover_steps_task_id'))

    op.drop_table('handover_steps')
    with op.batch_alter_table('handover_exceptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_handover_exceptions_task_id'))
        batch_op.drop_index('ix_handover_exceptions_day_kind_id')

    op.drop_table('handover_exceptions')
