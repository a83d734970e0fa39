"""Complaints owned to the end (issue 23): owner and handovers, subject (courier optional), resolution and update
due times, the customer's photo, the low rating a follow-up came from

Revision ID: 0031_complaint_ownership
Revises: 0030_claims
Create Date: 2026-12-07 13:40:00

Complaints stored before this revision are about a courier (`subject` courier)
and are owned by the staff member who recorded them, else the one who first
answered them. They had no resolution or update due time (both null): the
targets are fixed when a complaint is received, and theirs had none then
(docs/decisions.md, "Issue 23: complaints owned to the end").
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0031_complaint_ownership'
down_revision = '0030_claims'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('complaint_handovers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('complaint_id', sa.Integer(), nullable=False),
    sa.Column('from_staff_id', sa.String(length=32), nullable=True),
    sa.Column('to_staff_id', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('handed_over_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('handed_over_by', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['complaint_id'], ['complaints.id'],
                            name=op.f('fk_complaint_handovers_complaint_id_complaints'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['from_staff_id'], ['staff_users.id'],
                            name=op.f('fk_complaint_handovers_from_staff_id_staff_users')),
    sa.ForeignKeyConstraint(['handed_over_by'], ['staff_users.id'],
                            name=op.f('fk_complaint_handovers_handed_over_by_staff_users')),
    sa.ForeignKeyConstraint(['to_staff_id'], ['staff_users.id'],
                            name=op.f('fk_complaint_handovers_to_staff_id_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_complaint_handovers'))
    )
    op.create_index(op.f('ix_complaint_handovers_complaint_id'), 'complaint_handovers', ['complaint_id'],
                    unique=False)
    with op.batch_alter_table('complaints', schema=None) as batch_op:
        batch_op.add_column(sa.Column('subject', sa.String(length=16), server_default='courier', nullable=False))
        batch_op.add_column(sa.Column('resolution_due_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('update_due_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('owner_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('owned_since', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('photo_sha256', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('rating_id', sa.Integer(), nullable=True))
        batch_op.alter_column('courier_id', existing_type=sa.String(length=32), nullable=True)
        batch_op.create_unique_constraint(batch_op.f('uq_complaints_rating_id'), ['rating_id'])
        batch_op.create_foreign_key(batch_op.f('fk_complaints_owner_id_staff_users'), 'staff_users', ['owner_id'],
                                    ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_complaints_rating_id_ratings'), 'ratings', ['rating_id'], ['id'],
                                    ondelete='SET NULL')
        batch_op.create_index('ix_complaints_owner_id_id', ['owner_id', 'id'], unique=False)
    op.execute("UPDATE complaints SET owner_id = COALESCE(created_by, first_response_by), "
               "owned_since = CASE WHEN created_by IS NOT NULL THEN created_at ELSE first_response_at END")


def downgrade():
    # The old schema has no complaint without a courier: those (and their rows) cannot go back.
    op.execute("DELETE FROM complaints WHERE courier_id IS NULL")
    with op.batch_alter_table('complaints', schema=None) as batch_op:
        batch_op.drop_index('ix_complaints_owner_id_id')
        batch_op.drop_constraint(batch_op.f('fk_complaints_rating_id_ratings'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_complaints_owner_id_staff_users'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_complaints_rating_id'), type_='unique')
        batch_op.alter_column('courier_id', existing_type=sa.String(length=32), nullable=False)
        batch_op.drop_column('rating_id')
        batch_op.drop_column('photo_sha256')
        batch_op.drop_column('owned_since')
        batch_op.drop_column('owner_id')
        batch_op.drop_column('update_due_at')
        batch_op.drop_column('resolution_due_at')
        batch_op.drop_column('subject')
    op.drop_index(op.f('ix_complaint_handovers_complaint_id'), table_name='complaint_handovers')
    op.drop_table('complaint_handovers')
