"""op ids: one effect per (device, op_id), enforced by a unique index; rejections counted per device

Revision ID: 0023_op_ids
Revises: 0022_json_text
Create Date: 2026-11-25 09:00:00

An op sent again unchanged under the next seq (a handheld that renumbered its queue after a
crash) was applied a second time. `op_log.holds_op_id` marks the row that took an op_id for
its device, and `uq_op_log_device_op_id` (device_id, op_id) WHERE holds_op_id makes the
database refuse a second one (sync.push answers a resend from the first row).

Rows already stored: for every (device, op_id) the first in-sequence row (lowest id, i.e.
received first) holds it. Not holding, as the push engine now writes them:
- seq_reused rows (in_sequence false: they never took effect);
- rows rejected `invalid_op` and rows without an op_id (the op_id may be the malformed field;
  such an op took no effect, so a resend of it is judged afresh, harmlessly);
- any later row with the same op_id: a resend the old code applied again. Both rows and both
  effects stay as they were (the log is the field record; undoing a note or a payment is
  dispatch's call, not a migration's); from now on a resend answers the first row's result.

`devices.rejected_ops` starts at each device's rejected rows so far, so a device that is
already noisy is shown at once.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0023_op_ids'
down_revision = '0022_json_text'
branch_labels = None
depends_on = None

op_log = sa.table('op_log', sa.column('id', sa.Integer), sa.column('device_id', sa.String),
                  sa.column('op_id', sa.String), sa.column('code', sa.String), sa.column('status', sa.String),
                  sa.column('in_sequence', sa.Boolean), sa.column('holds_op_id', sa.Boolean))
devices = sa.table('devices', sa.column('id', sa.String), sa.column('rejected_ops', sa.Integer))


def upgrade():
    with op.batch_alter_table('op_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('holds_op_id', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rejected_ops', sa.Integer(), nullable=False, server_default='0'))
    first = (sa.select(sa.func.min(op_log.c.id))
             .where(op_log.c.in_sequence.is_(True), op_log.c.op_id != '',
                    sa.or_(op_log.c.code.is_(None), op_log.c.code != 'invalid_op'))
             .group_by(op_log.c.device_id, op_log.c.op_id))
    op.execute(op_log.update().where(op_log.c.id.in_(first)).values(holds_op_id=True))
    rejected = (sa.select(sa.func.count()).select_from(op_log)
                .where(op_log.c.device_id == devices.c.id, op_log.c.status == 'rejected').scalar_subquery())
    op.execute(devices.update().values(rejected_ops=rejected))
    op.create_index('uq_op_log_device_op_id', 'op_log', ['device_id', 'op_id'], unique=True,
                    sqlite_where=sa.text('holds_op_id'), postgresql_where=sa.text('holds_op_id'))


def downgrade():
    op.drop_index('uq_op_log_device_op_id', table_name='op_log',
                  sqlite_where=sa.text('holds_op_id'), postgresql_where=sa.text('holds_op_id'))
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+), not batch mode: copying a table that other tables'
    # rows reference fails their foreign keys on SQLite.
    op.drop_column('devices', 'rejected_ops')
    op.drop_column('op_log', 'holds_op_id')
