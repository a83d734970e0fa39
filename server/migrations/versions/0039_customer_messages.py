"""Messages to customers: the messages and their delivery, the recipients' language, the feed's position

Revision ID: 0039_customer_messages
Revises: 0038_task_search
Create Date: 2026-12-07 16:30:00

The feed's position starts at the newest event: events from before messages
existed are history, never texted to anyone (docs/decisions.md, "Messages to customers").
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0039_customer_messages'
down_revision = '0038_task_search'
branch_labels = None
depends_on = None

_POSITION = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.create_table('customer_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.String(length=32), nullable=False),
    sa.Column('event_id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('text', sa.String(length=1000), nullable=False),
    sa.Column('to_phone', sa.String(length=32), nullable=True),
    sa.Column('local_day', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('claim_token', sa.String(length=32), nullable=True),
    sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_status_code', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('provider_id', sa.String(length=100), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_customer_messages_task_id_tasks'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_messages')),
    sa.UniqueConstraint('event_id', name=op.f('uq_customer_messages_event_id'))
    )
    with op.batch_alter_table('customer_messages', schema=None) as batch_op:
        batch_op.create_index('ix_customer_messages_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_customer_messages_phone_day', ['to_phone', 'local_day'], unique=False)
        batch_op.create_index('ix_customer_messages_task_id_id', ['task_id', 'id'], unique=False)

    op.create_table('customer_languages',
    sa.Column('task_id', sa.String(length=32), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('chosen_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_customer_languages_task_id_tasks'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('task_id', name=op.f('pk_customer_languages'))
    )
    feed = op.create_table('message_feed',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('position', _POSITION, nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_message_feed'))
    )
    newest = op.get_bind().scalar(sa.text('SELECT COALESCE(MAX(position), 0) FROM events'))
    op.bulk_insert(feed, [{'name': 'customer-messages', 'position': newest}])


def downgrade():
    op.drop_table('message_feed')
    op.drop_table('customer_languages')
    with op.batch_alter_table('customer_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_customer_messages_task_id_id')
        batch_op.drop_index('ix_customer_messages_phone_day')
        batch_op.drop_index('ix_customer_messages_due')
    op.drop_table('customer_messages')
