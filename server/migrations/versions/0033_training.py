"""Training (issue 23): courses, sessions, attendance and results

Revision ID: 0033_training
Revises: 0032_violation_appeals
Create Date: 2026-12-07 13:40:00

No course exists after this revision: the shift gate's pre-job requirement
applies once quality creates an active pre-job course (docs/decisions.md,
"Issue 23: training and the shift gate").
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0033_training'
down_revision = '0032_violation_appeals'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('training_courses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('validity_months', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['staff_users.id'],
                            name=op.f('fk_training_courses_created_by_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_training_courses')),
    sa.UniqueConstraint('code', name=op.f('uq_training_courses_code'))
    )
    op.create_table('training_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('course_id', sa.Integer(), nullable=False),
    sa.Column('held_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('trainer', sa.String(length=100), nullable=False),
    sa.Column('location', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['course_id'], ['training_courses.id'],
                            name=op.f('fk_training_sessions_course_id_training_courses')),
    sa.ForeignKeyConstraint(['created_by'], ['staff_users.id'],
                            name=op.f('fk_training_sessions_created_by_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_training_sessions')),
    sa.UniqueConstraint('course_id', 'held_at', name='uq_training_sessions_course_id_held_at')
    )
    op.create_index('ix_training_sessions_held_at', 'training_sessions', ['held_at'], unique=False)
    op.create_table('training_attendance',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('courier_id', sa.String(length=32), nullable=False),
    sa.Column('attended', sa.Boolean(), nullable=False),
    sa.Column('passed', sa.Boolean(), nullable=False),
    sa.Column('score', sa.Integer(), nullable=True),
    sa.Column('valid_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.String(length=32), nullable=True),
    sa.Column('corrections', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['courier_id'], ['couriers.id'],
                            name=op.f('fk_training_attendance_courier_id_couriers')),
    sa.ForeignKeyConstraint(['recorded_by'], ['staff_users.id'],
                            name=op.f('fk_training_attendance_recorded_by_staff_users')),
    sa.ForeignKeyConstraint(['session_id'], ['training_sessions.id'],
                            name=op.f('fk_training_attendance_session_id_training_sessions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_training_attendance')),
    sa.UniqueConstraint('session_id', 'courier_id', name='uq_training_attendance_session_id_courier_id')
    )
    op.create_index('ix_training_attendance_courier_id', 'training_attendance', ['courier_id'], unique=False)


def downgrade():
    op.drop_index('ix_training_attendance_courier_id', table_name='training_attendance')
    op.drop_table('training_attendance')
    op.drop_index('ix_training_sessions_held_at', table_name='training_sessions')
    op.drop_table('training_sessions')
    op.drop_table('training_courses')
