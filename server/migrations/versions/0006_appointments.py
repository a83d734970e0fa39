"""appointments: agreed windows and their history, contact attempts, violations; device clock skew on ops

Revision ID: 0006_appointments
Revises: 0005_staff_token_usage
Create Date: 2026-11-24 03:00:00

Every existing task gets an `unconfirmed` appointment whose window is the
task's window, as a task created from now on does.
"""
from alembic import op
import sqlalchemy as sa


revision = '0006_appointments'
down_revision = '0005_staff_token_usage'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('appointments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('window_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('arrived_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('notice_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('notice_eta', sa.DateTime(timezone=True), nullable=True),
    sa.Column('notice_reason', sa.String(length=300), nullable=True),
    sa.Column('notice_in_time', sa.Boolean(), nullable=False),
    sa.Column('needs_new_appointment', sa.Boolean(), nullable=False),
    sa.Column('exception', sa.String(length=32), nullable=True),
    sa.Column('clock_suspect', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_appointments_task_id_tasks'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_appointments')),
    sa.UniqueConstraint('task_id', name=op.f('uq_appointments_task_id'))
    )
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_appointments_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_appointments_window_end'), ['window_end'], unique=False)

    op.create_table('appointment_windows',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('appointment_id', sa.Integer(), nullable=False),
    sa.Column('start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('proposed_by_kind', sa.String(length=16), nullable=False),
    sa.Column('proposed_by_id', sa.String(length=64), nullable=True),
    sa.Column('agreed_by_kind', sa.String(length=16), nullable=True),
    sa.Column('agreed_by_id', sa.String(length=64), nullable=True),
    sa.Column('via', sa.String(length=16), nullable=True),
    sa.Column('reason', sa.String(length=300), nullable=True),
    sa.Column('device_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('op_id', sa.String(length=64), nullable=True),
    sa.Column('agreed_op_id', sa.String(length=64), nullable=True),
    sa.Column('clock_suspect', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['appointment_id'], ['appointments.id'],
                            name=op.f('fk_appointment_windows_appointment_id_appointments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_appointment_windows'))
    )
    with op.batch_alter_table('appointment_windows', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_appointment_windows_appointment_id'), ['appointment_id'], unique=False)

    op.create_table('contact_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('appointment_id', sa.Integer(), nullable=False),
    sa.Column('courier_id', sa.String(length=32), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('device_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('op_id', sa.String(length=64), nullable=True),
    sa.Column('clock_suspect', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['appointment_id'], ['appointments.id'],
                            name=op.f('fk_contact_attempts_appointment_id_appointments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_attempts'))
    )
    with op.batch_alter_table('contact_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contact_attempts_appointment_id'), ['appointment_id'], unique=False)

    op.create_table('violations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('courier_id', sa.String(length=32), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('task_id', sa.String(length=32), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('dedupe_key', sa.String(length=100), nullable=True),
    sa.ForeignKeyConstraint(['courier_id'], ['couriers.id'], name=op.f('fk_violations_courier_id_couriers')),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_violations_task_id_tasks'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_violations')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_violations_dedupe_key'))
    )
    with op.batch_alter_table('violations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_violations_task_id'), ['task_id'], unique=False)
        batch_op.create_index('ix_violations_courier_id_id', ['courier_id', 'id'], unique=False)

    with op.batch_alter_table('op_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('clock_skew_s', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('clock_suspect', sa.Boolean(), nullable=False, server_default=sa.false()))

    op.execute(
        "INSERT INTO appointments (task_id, status, window_start, window_end, notice_in_time, "
        "needs_new_appointment, clock_suspect, updated_at) "
        "SELECT id, 'unconfirmed', window_start, window_end, false, false, false, created_at FROM tasks")
    op.execute(
        "INSERT INTO appointment_windows (appointment_id, start, \"end\", status, proposed_by_kind, via, "
        "received_at, clock_suspect) "
        "SELECT id, window_start, window_end, 'proposed', 'staff', 'dispatch', updated_at, false FROM appointments")


def downgrade():
    with op.batch_alter_table('op_log', schema=None) as batch_op:
        batch_op.drop_column('clock_suspect')
        batch_op.drop_column('clock_skew_s')
    op.drop_table('violations')
    op.drop_table('contact_attempts')
    op.drop_table('appointment_windows')
    op.drop_table('appointments')
