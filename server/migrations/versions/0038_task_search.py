"""Task search: a recipient's surname and phone suffix kept beside them, and the indexes search uses

Revision ID: 0038_task_search
Revises: 0037_exception_handling
Create Date: 2026-12-07 16:30:00

Tasks stored before it get their keys from the same rule (server.names) the model applies on every change.
"""
from alembic import op
import sqlalchemy as sa

from server import names


# revision identifiers, used by Alembic.
revision = '0038_task_search'
down_revision = '0037_exception_handling'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recipient_surname', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('recipient_phone_suffix', sa.String(length=4), nullable=True))
    tasks = sa.table('tasks', sa.column('id', sa.String), sa.column('recipient_name', sa.String),
                     sa.column('recipient_phone', sa.String), sa.column('recipient_surname', sa.String),
                     sa.column('recipient_phone_suffix', sa.String))
    bind = op.get_bind()
    rows = bind.execute(sa.select(tasks.c.id, tasks.c.recipient_name, tasks.c.recipient_phone)).all()
    if rows:
        bind.execute(tasks.update().where(tasks.c.id == sa.bindparam('task_id')).values(
            recipient_surname=sa.bindparam('surname'), recipient_phone_suffix=sa.bindparam('suffix')),
            [{'task_id': task_id, 'surname': names.surname_key(name), 'suffix': names.phone_suffix(phone)}
             for task_id, name, phone in rows])
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.create_index('ix_tasks_recipient_surname_service_date', ['recipient_surname', 'service_date'],
                              unique=False)
        batch_op.create_index('ix_tasks_recipient_phone_suffix_service_date',
                              ['recipient_phone_suffix', 'service_date'], unique=False)
        batch_op.create_index('ix_tasks_waybill_prefix', ['waybill_no'], unique=False,
                              postgresql_ops={'waybill_no': 'varchar_pattern_ops'})


def downgrade():
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_tasks_waybill_prefix')
        batch_op.drop_index('ix_tasks_recipient_phone_suffix_service_date')
        batch_op.drop_index('ix_tasks_recipient_surname_service_date')
        batch_op.drop_column('recipient_phone_suffix')
        batch_op.drop_column('recipient_surname')
