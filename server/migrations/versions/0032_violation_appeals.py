"""violation appeals, inspections (spot checks, mystery shoppers), grade overrides; violations' status and clock

Revision ID: 0032_violation_appeals
Revises: 0031_complaint_ownership
Create Date: 2026-12-07 14:00:00

Violations recorded before this revision are `open` (standing, never appealed nor
decided); their `clock_suspect` is taken from their evidence where the rule that
recorded them kept it there (`evidence.clock_suspect` true), else false. The default
inspection template (server.checklist_defaults.INSPECTION_TEMPLATE_0032) is inserted
as version 1; it is in no courier's scope, so no change row is written.
"""
import os
import time
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa

from server.checklist_defaults import INSPECTION_TEMPLATE_0032


# revision identifiers, used by Alembic.
revision = '0032_violation_appeals'
down_revision = '0031_complaint_ownership'
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(sa.Text(), 'sqlite')
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_ITEM_KEYS = ("code", "label_zh", "label_en", "type", "required", "severity", "photo_required_on_failure",
              "min", "max", "unit", "choices", "failing_choices")

violations = sa.table('violations', sa.column('id', sa.Integer), sa.column('evidence', sa.JSON),
                      sa.column('clock_suspect', sa.Boolean))
templates = sa.table('checklist_templates', sa.column('id', sa.String), sa.column('kind', sa.String),
                     sa.column('name', sa.String), sa.column('status', sa.String),
                     sa.column('current', sa.Integer), sa.column('version', sa.Integer),
                     sa.column('created_at', sa.DateTime(timezone=True)))
versions = sa.table('checklist_template_versions', sa.column('template_id', sa.String),
                    sa.column('number', sa.Integer), sa.column('items', sa.JSON),
                    sa.column('published_at', sa.DateTime(timezone=True)))


def _new_id(prefix: str) -> str:
    """An id as server.ids.new_id makes them (copied: a migration does not import the app)."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return f"{prefix}-{''.join(reversed(chars))}"


def upgrade():
    with op.batch_alter_table('violations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sa.String(length=16), server_default='open', nullable=False))
        batch_op.add_column(sa.Column('clock_suspect', sa.Boolean(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('decided_by', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('decision_reason', sa.Text(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_violations_decided_by_staff_users'), 'staff_users',
                                    ['decided_by'], ['id'])
        batch_op.create_index('ix_violations_status_id', ['status', 'id'], unique=False)
    _clock_suspect_from_evidence()
    op.create_table('violation_appeals',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('violation_id', sa.Integer(), nullable=False),
    sa.Column('courier_id', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('photos', _JSON, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('device_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('clock_suspect', sa.Boolean(), nullable=False),
    sa.Column('op_id', sa.String(length=64), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.String(length=32), nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['courier_id'], ['couriers.id'], name=op.f('fk_violation_appeals_courier_id_couriers')),
    sa.ForeignKeyConstraint(['decided_by'], ['staff_users.id'],
                            name=op.f('fk_violation_appeals_decided_by_staff_users')),
    sa.ForeignKeyConstraint(['violation_id'], ['violations.id'],
                            name=op.f('fk_violation_appeals_violation_id_violations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_violation_appeals')),
    sa.UniqueConstraint('violation_id', name=op.f('uq_violation_appeals_violation_id'))
    )
    op.create_index(op.f('ix_violation_appeals_courier_id'), 'violation_appeals', ['courier_id'], unique=False)
    op.create_table('inspections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('template_id', sa.String(length=32), nullable=False),
    sa.Column('template_version', sa.Integer(), nullable=False),
    sa.Column('courier_id', sa.String(length=32), nullable=False),
    sa.Column('vehicle_id', sa.String(length=32), nullable=True),
    sa.Column('task_id', sa.String(length=32), nullable=True),
    sa.Column('inspector', sa.String(length=100), nullable=False),
    sa.Column('inspected_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('photos', _JSON, nullable=False),
    sa.Column('answers', _JSON, nullable=False),
    sa.Column('failed', _JSON, nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['courier_id'], ['couriers.id'], name=op.f('fk_inspections_courier_id_couriers')),
    sa.ForeignKeyConstraint(['recorded_by'], ['staff_users.id'], name=op.f('fk_inspections_recorded_by_staff_users')),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_inspections_task_id_tasks'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['template_id'], ['checklist_templates.id'],
                            name=op.f('fk_inspections_template_id_checklist_templates')),
    sa.ForeignKeyConstraint(['vehicle_id'], ['vehicles.id'], name=op.f('fk_inspections_vehicle_id_vehicles')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inspections'))
    )
    op.create_index('ix_inspections_courier_id_id', 'inspections', ['courier_id', 'id'], unique=False)
    op.create_table('grade_overrides',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('courier_id', sa.String(length=32), nullable=False),
    sa.Column('grade', sa.String(length=1), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=32), nullable=False),
    sa.Column('lifted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lifted_by', sa.String(length=32), nullable=True),
    sa.Column('lift_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['courier_id'], ['couriers.id'], name=op.f('fk_grade_overrides_courier_id_couriers')),
    sa.ForeignKeyConstraint(['created_by'], ['staff_users.id'], name=op.f('fk_grade_overrides_created_by_staff_users')),
    sa.ForeignKeyConstraint(['lifted_by'], ['staff_users.id'], name=op.f('fk_grade_overrides_lifted_by_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grade_overrides'))
    )
    op.create_index('ix_grade_overrides_courier_id_id', 'grade_overrides', ['courier_id', 'id'], unique=False)
    _insert_inspection_template()


def _clock_suspect_from_evidence():
    """Violations whose evidence says they were recorded on a flagged clock are clock_suspect."""
    bind = op.get_bind()
    suspect = [row.id for row in bind.execute(sa.select(violations.c.id, violations.c.evidence))
               if isinstance(row.evidence, dict) and row.evidence.get("clock_suspect") is True]
    for begin in range(0, len(suspect), 500):
        bind.execute(violations.update().where(violations.c.id.in_(suspect[begin:begin + 500]))
                     .values(clock_suspect=True))


def _insert_inspection_template():
    """The default inspection template at version 1, unless one of its kind exists."""
    bind = op.get_bind()
    if bind.scalar(sa.select(sa.func.count()).select_from(templates).where(templates.c.kind == 'inspection')):
        return
    now, template_id = datetime.now(timezone.utc), _new_id("k")
    spec = INSPECTION_TEMPLATE_0032
    bind.execute(templates.insert().values(id=template_id, kind=spec["kind"], name=spec["name"], status='active',
                                           current=1, version=1, created_at=now))
    bind.execute(versions.insert().values(template_id=template_id, number=1, published_at=now,
                                          items=[{key: item.get(key) for key in _ITEM_KEYS}
                                                 for item in spec["items"]]))


def downgrade():
    bind = op.get_bind()
    ids = [row[0] for row in bind.execute(sa.select(templates.c.id).where(templates.c.kind == 'inspection'))]
    op.drop_index('ix_grade_overrides_courier_id_id', table_name='grade_overrides')
    op.drop_table('grade_overrides')
    op.drop_index('ix_inspections_courier_id_id', table_name='inspections')
    op.drop_table('inspections')
    if ids:
        bind.execute(versions.delete().where(versions.c.template_id.in_(ids)))
        bind.execute(templates.delete().where(templates.c.id.in_(ids)))
    op.drop_index(op.f('ix_violation_appeals_courier_id'), table_name='violation_appeals')
    op.drop_table('violation_appeals')
    with op.batch_alter_table('violations', schema=None) as batch_op:
        batch_op.drop_index('ix_violations_status_id')
        batch_op.drop_constraint(batch_op.f('fk_violations_decided_by_staff_users'), type_='foreignkey')
        batch_op.drop_column('decision_reason')
        batch_op.drop_column('decided_by')
        batch_op.drop_column('decided_at')
        batch_op.drop_column('clock_suspect')
        batch_op.drop_column('status')
