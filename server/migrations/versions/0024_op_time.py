"""op time: each op's effective time beside the device's, and what bounds a device's next op

Revision ID: 0024_op_time
Revises: 0023_op_ids
Create Date: 2026-11-26 09:00:00

The push engine decides once when an op happened (sync.timing): the device's time corrected by
the batch's skew, held between what the server knows came first and the op's receipt.
`op_log.effective_time` keeps it beside `device_time` (as the device said it). Rows already
stored take their `device_time`: it is what the rules went by when they were applied.

`devices.trusted_sync_at` / `trusted_sync_seq`: the last push whose clock was within the
tolerance and which said the highest seq its device had assigned; `devices.last_op_at`: the
floor of the device's next op. All start empty: a device's next op is then held to its
enrollment and its entity's birth until its first push under this revision.
"""
from alembic import op
import sqlalchemy as sa

import server.clock


# revision identifiers, used by Alembic.
revision = '0024_op_time'
down_revision = '0023_op_ids'
branch_labels = None
depends_on = None

op_log = sa.table('op_log', sa.column('device_time', server.clock.UTCDateTime(timezone=True)),
                  sa.column('effective_time', server.clock.UTCDateTime(timezone=True)))


def upgrade():
    with op.batch_alter_table('op_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('effective_time', server.clock.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trusted_sync_at', server.clock.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('trusted_sync_seq', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('last_op_at', server.clock.UTCDateTime(timezone=True), nullable=True))
    op.execute(op_log.update().values(effective_time=op_log.c.device_time))


def downgrade():
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+), not batch mode: copying a table that other tables'
    # rows reference fails their foreign keys on SQLite.
    op.drop_column('devices', 'last_op_at')
    op.drop_column('devices', 'trusted_sync_seq')
    op.drop_column('devices', 'trusted_sync_at')
    op.drop_column('op_log', 'effective_time')
