"""Claims (理赔): claims and their append-only entries; parcels' declared value and insurance

Revision ID: 0030_claims
Revises: 0028_service_promise
Create Date: 2026-12-07 10:40:00

Parcels stored before this revision were not insured and declared no value
(`insured` false, `declared_value` null): their claims are assessed by the
uninsured rule (docs/decisions.md, "Claims").
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0030_claims'
down_revision = '0029_parcel_scans'
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(sa.Text(), 'sqlite')


def upgrade():
    with op.batch_alter_table('parcels', schema=None) as batch_op:
        batch_op.add_column(sa.Column('declared_value', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('insured', sa.Boolean(), server_default='0', nullable=False))
    op.create_table('claims',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.String(length=32), nullable=False),
    sa.Column('parcel_no', sa.String(length=40), nullable=False),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('origin_id', sa.String(length=64), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('claimed_amount', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('opened_by', sa.String(length=32), nullable=True),
    sa.Column('opened_by_kind', sa.String(length=16), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('late_steps', sa.Integer(), nullable=False),
    sa.Column('assessed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('rule', sa.String(length=32), nullable=True),
    sa.Column('first_assessed_amount', sa.Integer(), nullable=True),
    sa.Column('amount', sa.Integer(), nullable=True),
    sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('paid_amount', sa.Integer(), nullable=True),
    sa.Column('payment_reference', sa.String(length=64), nullable=True),
    sa.Column('rejected_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reject_reason', sa.Text(), nullable=True),
    sa.Column('corrections', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_claims_task_id_tasks')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_claims'))
    )
    op.create_index(op.f('ix_claims_task_id'), 'claims', ['task_id'], unique=False)
    op.create_index('ix_claims_parcel_origin', 'claims', ['task_id', 'parcel_no', 'origin', 'origin_id'],
                    unique=False)
    op.create_index('ix_claims_status_due', 'claims', ['status', 'due_at'], unique=False)
    op.create_index('ix_claims_opened_at', 'claims', ['opened_at'], unique=False)
    op.create_table('claim_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('claim_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_kind', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.String(length=32), nullable=True),
    sa.Column('amount', sa.Integer(), nullable=True),
    sa.Column('corrects_id', sa.Integer(), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('late', sa.Boolean(), nullable=False),
    sa.Column('data', _JSON, nullable=True),
    sa.ForeignKeyConstraint(['claim_id'], ['claims.id'], name=op.f('fk_claim_entries_claim_id_claims')),
    sa.ForeignKeyConstraint(['corrects_id'], ['claim_entries.id'],
                            name=op.f('fk_claim_entries_corrects_id_claim_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_claim_entries'))
    )
    op.create_index('ix_claim_entries_claim_id_id', 'claim_entries', ['claim_id', 'id'], unique=False)


def downgrade():
    op.drop_index('ix_claim_entries_claim_id_id', table_name='claim_entries')
    op.drop_table('claim_entries')
    op.drop_index('ix_claims_opened_at', table_name='claims')
    op.drop_index('ix_claims_status_due', table_name='claims')
    op.drop_index('ix_claims_parcel_origin', table_name='claims')
    op.drop_index(op.f('ix_claims_task_id'), table_name='claims')
    op.drop_table('claims')
    with op.batch_alter_table('parcels', schema=None) as batch_op:
        batch_op.drop_column('insured')
        batch_op.drop_column('declared_value')
