"""handover consent: the customer's note with their consent to an alternate place, and its withdrawal

Revision ID: 0013_handover_consent
Revises: 0009_handover
Create Date: 2026-11-25 09:00:00

The customer page records consent to a locker, station or neighbour (with an
optional note, e.g. which neighbour) and lets the customer withdraw it before
delivery; the withdrawal time decides an alternate delivery made offline before it.
"""
from alembic import op
import sqlalchemy as sa

import server.clock


# revision identifiers, used by Alembic.
revision = '0013_handover_consent'
down_revision = '0012_complaints_grades'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('handovers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('consent_note', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('consent_withdrawn_at', server.clock.UTCDateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('handovers', schema=None) as batch_op:
        batch_op.drop_column('consent_withdrawn_at')
        batch_op.drop_column('consent_note')
