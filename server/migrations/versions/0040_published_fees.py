"""Published fees on the handhelds: a sync version on fee_codes (pull entity fee_code)

Revision ID: 0040_published_fees
Revises: 0039_customer_messages
Create Date: 2026-12-07 19:30:00

Every device holds the active fee codes offline so a pickup charges only published fees
(docs/protocol.md, "Pull"; docs/decisions.md, "Issue 25: published fees on the device").
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0040_published_fees'
down_revision = '0039_customer_messages'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('fee_codes') as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))


def downgrade():
    with op.batch_alter_table('fee_codes') as batch_op:
        batch_op.drop_column('version')
