"""complaints and grades: customer complaints with response times, grade history, the grade's evaluation

Revision ID: 0012_complaints_grades
Revises: 0007_customer_links
Create Date: 2026-11-25 03:00:00

Existing couriers keep their grade (A by default) with no evaluation until
the `grades` job first runs.
"""
from alembic import op
import sqlalchemy as sa


revision = '0012_complaints_grades'
down_revision = '0010_receipts'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('complaints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('courier_id', sa.String(length=32), nullable=False),
    sa.Column('task_id', sa.String(length=32), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('response_due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('first_response_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('first_response_by', sa.String(length=32), nullable=True),
    sa.Column('first_response_text', sa.Text(), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_by', sa.String(length=32), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('resolution_note', sa.Text(), nullable=True),
    sa.Column('resolved_at_first_contact', sa.Boolean(), nullable=True),
    sa.Column('satisfaction', sa.String(length=16), nullable=True),
    sa.Column('satisfaction_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('violation_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['courier_id'], ['couriers.id'], name=op.f('fk_complaints_courier_id_couriers')),
    sa.ForeignKeyConstraint(['created_by'], ['staff_users.id'], name=op.f('fk_complaints_created_by_staff_users')),
    sa.ForeignKeyConstraint(['first_response_by'], ['staff_users.id'],
                            name=op.f('fk_complaints_first_response_by_staff_users')),
    sa.ForeignKeyConstraint(['resolved_by'], ['staff_users.id'], name=op.f('fk_complaints_resolved_by_staff_users')),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_complaints_task_id_tasks'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['violation_id'], ['violations.id'], name=op.f('fk_complaints_violation_id_violations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_complaints'))
    )
    with op.batch_alter_table('complaints', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_complaints_task_id'), ['task_id'], unique=False)
        batch_op.create_index('ix_complaints_courier_id_id', ['courier_id', 'id'], unique=False)
        batch_op.create_index('ix_complaints_open_due', ['first_response_at', 'response_due_at'], unique=False)

    op.create_table('grade_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('courier_id', sa.String(length=32), nullable=False),
    sa.Column('from_grade', sa.String(length=1), nullable=False),
    sa.Column('to_grade', sa.String(length=1), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('window_from', sa.DateTime(timezone=True), nullable=False),
    sa.Column('window_to', sa.DateTime(timezone=True), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('computed_by', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['computed_by'], ['staff_users.id'],
                            name=op.f('fk_grade_changes_computed_by_staff_users')),
    sa.ForeignKeyConstraint(['courier_id'], ['couriers.id'], name=op.f('fk_grade_changes_courier_id_couriers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grade_changes'))
    )
    with op.batch_alter_table('grade_changes', schema=None) as batch_op:
        batch_op.create_index('ix_grade_changes_courier_id_id', ['courier_id', 'id'], unique=False)

    with op.batch_alter_table('couriers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('grade_detail', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('couriers', schema=None) as batch_op:
        batch_op.drop_column('grade_detail')
    op.drop_table('grade_changes')
    op.drop_table('complaints')
