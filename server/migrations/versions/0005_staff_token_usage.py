"""staff token usage: a label and issuer on API tokens; enrollments issued from the CLI

Revision ID: 0005_staff_token_usage
Revises: 0003_normalised_identifiers
Create Date: 2026-11-24 02:00:00

api_tokens.last_used_at exists since 0001; it is now stamped (at most once a
minute per token). enrollments.created_by becomes nullable: `fieldops
enroll-courier` issues codes with no staff user behind them.
"""
from alembic import op
import sqlalchemy as sa


revision = '0005_staff_token_usage'
down_revision = '0003_normalised_identifiers'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('label', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('created_by', sa.String(length=32), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_api_tokens_created_by_staff_users'),
                                    'staff_users', ['created_by'], ['id'])
    with op.batch_alter_table('enrollments', schema=None) as batch_op:
        batch_op.alter_column('created_by', existing_type=sa.String(length=32), nullable=True)


def downgrade():
    with op.batch_alter_table('enrollments', schema=None) as batch_op:
        batch_op.alter_column('created_by', existing_type=sa.String(length=32), nullable=False)
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_api_tokens_created_by_staff_users'), type_='foreignkey')
        batch_op.drop_column('created_by')
        batch_op.drop_column('label')
