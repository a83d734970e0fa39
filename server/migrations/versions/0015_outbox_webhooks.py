"""outbox and webhooks: domain events in commit order, webhook subscriptions, one delivery per event and subscription

Revision ID: 0015_outbox_webhooks
Revises: 0016_manifest_retention
Create Date: 2026-11-26 09:00:00

Events are appended by the services in the transaction of the change (the
event feed and the webhook outbox read them); a subscription keeps its signing
secret sealed with a key derived from FIELDOPS_SECRET_KEY and the position up
to which its deliveries are made. Nothing existing changes: events start with
this revision.
"""
from alembic import op
import sqlalchemy as sa

import server.clock


revision = '0015_outbox_webhooks'
down_revision = '0016_manifest_retention'
branch_labels = None
depends_on = None

_POSITION = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.create_table('events',
    sa.Column('position', _POSITION, autoincrement=True, nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('type', sa.String(length=40), nullable=False),
    sa.Column('subject_id', sa.String(length=64), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('occurred_at', server.clock.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('position', name=op.f('pk_events')),
    sa.UniqueConstraint('id', name=op.f('uq_events_id')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_type_position', ['type', 'position'], unique=False)

    op.create_table('webhook_subscriptions',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('event_types', sa.JSON(), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('secret_sealed', sa.String(length=200), nullable=False),
    sa.Column('fanned_out_to', _POSITION, nullable=False),
    sa.Column('created_by', sa.String(length=32), nullable=True),
    sa.Column('created_at', server.clock.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', server.clock.UTCDateTime(timezone=True), nullable=False),
    sa.Column('secret_rotated_at', server.clock.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['staff_users.id'],
                            name=op.f('fk_webhook_subscriptions_created_by_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_subscriptions'))
    )

    op.create_table('webhook_deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subscription_id', sa.String(length=32), nullable=False),
    sa.Column('event_position', _POSITION, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', server.clock.UTCDateTime(timezone=True), nullable=False),
    sa.Column('claim_token', sa.String(length=32), nullable=True),
    sa.Column('claimed_until', server.clock.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_attempt_at', server.clock.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_status_code', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('delivered_at', server.clock.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', server.clock.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', server.clock.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['event_position'], ['events.position'],
                            name=op.f('fk_webhook_deliveries_event_position_events'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['subscription_id'], ['webhook_subscriptions.id'],
                            name=op.f('fk_webhook_deliveries_subscription_id_webhook_subscriptions'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_deliveries')),
    sa.UniqueConstraint('subscription_id', 'event_position', name='uq_webhook_deliveries_event')
    )
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_deliveries_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_webhook_deliveries_subscription_id_id', ['subscription_id', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_deliveries_subscription_id_id')
        batch_op.drop_index('ix_webhook_deliveries_due')
    op.drop_table('webhook_deliveries')
    op.drop_table('webhook_subscriptions')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_type_position')
    op.drop_table('events')
