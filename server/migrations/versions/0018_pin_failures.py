"""handover PIN failures and the gift's version: guessing a PIN locks it; a gift added after the handheld's copy is not its fault

Revision ID: 0018_pin_failures
Revises: 0013_handover_consent
Create Date: 2026-11-24 06:00:00

After FIELDOPS_HANDOVER_PIN_MAX_FAILURES wrong PINs the server stops checking
PINs for the task (`pin_locked`) until dispatch issues a new one. `tasks.gift_version`
is the task version at which the current gift was set: a signature based on an older
copy cannot have disclosed it (flagged for dispatch, no violation).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0018_pin_failures'
down_revision = '0013_handover_consent'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('handovers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pin_failures', sa.Integer(), nullable=False, server_default='0'))
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('gift_version', sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_column('gift_version')
    with op.batch_alter_table('handovers', schema=None) as batch_op:
        batch_op.drop_column('pin_failures')
