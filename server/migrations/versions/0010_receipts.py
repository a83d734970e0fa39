"""receipts: sealed (Ed25519) receipts of completed handovers, their public keys, a daily number counter

Revision ID: 0010_receipts
Revises: 0007_customer_links
Create Date: 2026-11-24 04:30:00

A receipt keeps the canonical JSON exactly as it was signed, the signature and
the key id; keys stay after rotation so that old receipts still verify. One
receipt per task and kind (delivery, refusal, pickup).
"""
from alembic import op
import sqlalchemy as sa

import server.clock


revision = '0010_receipts'
down_revision = '0011_checklists'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('receipt_counters',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('last', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_receipt_counters'))
    )
    op.create_table('receipt_keys',
    sa.Column('key_id', sa.String(length=16), nullable=False),
    sa.Column('public_key', sa.String(length=64), nullable=False),
    sa.Column('created_at', server.clock.UTCDateTime(timezone=True), nullable=False),
    sa.Column('retired_at', server.clock.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('key_id', name=op.f('pk_receipt_keys'))
    )
    op.create_table('receipts',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('task_id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('issued_at', server.clock.UTCDateTime(timezone=True), nullable=False),
    sa.Column('key_id', sa.String(length=16), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('signature', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['key_id'], ['receipt_keys.key_id'], name=op.f('fk_receipts_key_id_receipt_keys')),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_receipts_task_id_tasks')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_receipts')),
    sa.UniqueConstraint('number', name=op.f('uq_receipts_number')),
    sa.UniqueConstraint('task_id', 'kind', name=op.f('uq_receipts_task_id')),
    sa.UniqueConstraint('token', name=op.f('uq_receipts_token'))
    )


def downgrade():
    op.drop_table('receipts')
    op.drop_table('receipt_keys')
    op.drop_table('receipt_counters')
