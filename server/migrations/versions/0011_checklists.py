"""checklists: versioned templates, submissions, van defects, shifts; ids create ops spent; vans out_of_service

Revision ID: 0011_checklists
Revises: 0007_customer_links
Create Date: 2026-11-24 04:31:03

The default templates (server/checklist_defaults.py) are inserted, so a fresh
database has them; a van that was `grounded` is now `out_of_service`.
"""
from datetime import datetime, timezone
import os
import time

from alembic import op
import sqlalchemy as sa

from server.checklist_defaults import TEMPLATES_0011 as DEFAULT_TEMPLATES  # as shipped, never changed

revision = '0011_checklists'
down_revision = '0009_handover'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('checklist_templates',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('current', sa.Integer(), nullable=False),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_checklist_templates'))
    )
    with op.batch_alter_table('checklist_templates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_checklist_templates_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_checklist_templates_status'), ['status'], unique=False)

    op.create_table('checklist_template_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('template_id', sa.String(length=32), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('items', sa.JSON(), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('published_by', sa.String(length=32), nullable=True),
    sa.Column('superseded_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['published_by'], ['staff_users.id'], name=op.f('fk_checklist_template_versions_published_by_staff_users')),
    sa.ForeignKeyConstraint(['template_id'], ['checklist_templates.id'], name=op.f('fk_checklist_template_versions_template_id_checklist_templates'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_checklist_template_versions')),
    sa.UniqueConstraint('template_id', 'number', name=op.f('uq_checklist_template_versions_template_id'))
    )
    op.create_table('checklist_submissions',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('template_id', sa.String(length=32), nullable=False),
    sa.Column('template_version', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('courier_id', sa.String(length=32), nullable=False),
    sa.Column('vehicle_id', sa.String(length=32), nullable=True),
    sa.Column('task_id', sa.String(length=32), nullable=True),
    sa.Column('answers', sa.JSON(), nullable=False),
    sa.Column('failed', sa.JSON(), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('signature', sa.String(length=64), nullable=True),
    sa.Column('acknowledged_id', sa.String(length=36), nullable=True),
    sa.Column('flags', sa.JSON(), nullable=False),
    sa.Column('device_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('op_id', sa.String(length=64), nullable=False),
    sa.Column('clock_suspect', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['courier_id'], ['couriers.id'], name=op.f('fk_checklist_submissions_courier_id_couriers')),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_checklist_submissions_task_id_tasks'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['template_id'], ['checklist_templates.id'], name=op.f('fk_checklist_submissions_template_id_checklist_templates')),
    sa.ForeignKeyConstraint(['vehicle_id'], ['vehicles.id'], name=op.f('fk_checklist_submissions_vehicle_id_vehicles')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_checklist_submissions'))
    )
    with op.batch_alter_table('checklist_submissions', schema=None) as batch_op:
        batch_op.create_index('ix_checklist_submissions_courier_time', ['courier_id', 'device_time'], unique=False)
        batch_op.create_index('ix_checklist_submissions_vehicle_time', ['vehicle_id', 'device_time'], unique=False)

    op.create_table('created_entities',
    sa.Column('entity_id', sa.String(length=64), nullable=False),
    sa.Column('entity', sa.String(length=32), nullable=False),
    sa.Column('device_id', sa.String(length=32), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_created_entities_device_id_devices')),
    sa.PrimaryKeyConstraint('entity_id', name=op.f('pk_created_entities'))
    )
    op.create_table('shifts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('courier_id', sa.String(length=32), nullable=False),
    sa.Column('vehicle_id', sa.String(length=32), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('start_odometer', sa.BigInteger(), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('end_odometer', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('flags', sa.JSON(), nullable=False),
    sa.Column('start_op_id', sa.String(length=64), nullable=False),
    sa.Column('end_op_id', sa.String(length=64), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['courier_id'], ['couriers.id'], name=op.f('fk_shifts_courier_id_couriers')),
    sa.ForeignKeyConstraint(['vehicle_id'], ['vehicles.id'], name=op.f('fk_shifts_vehicle_id_vehicles')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shifts'))
    )
    with op.batch_alter_table('shifts', schema=None) as batch_op:
        batch_op.create_index('ix_shifts_courier_status', ['courier_id', 'status'], unique=False)

    op.create_table('vehicle_defects',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('vehicle_id', sa.String(length=32), nullable=False),
    sa.Column('submission_id', sa.String(length=36), nullable=False),
    sa.Column('item', sa.String(length=32), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('value', sa.JSON(), nullable=False),
    sa.Column('reported_by', sa.String(length=32), nullable=False),
    sa.Column('reported_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_by', sa.String(length=32), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('photos', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['reported_by'], ['couriers.id'], name=op.f('fk_vehicle_defects_reported_by_couriers')),
    sa.ForeignKeyConstraint(['resolved_by'], ['staff_users.id'], name=op.f('fk_vehicle_defects_resolved_by_staff_users')),
    sa.ForeignKeyConstraint(['submission_id'], ['checklist_submissions.id'], name=op.f('fk_vehicle_defects_submission_id_checklist_submissions')),
    sa.ForeignKeyConstraint(['vehicle_id'], ['vehicles.id'], name=op.f('fk_vehicle_defects_vehicle_id_vehicles')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vehicle_defects'))
    )
    with op.batch_alter_table('vehicle_defects', schema=None) as batch_op:
        batch_op.create_index('ix_vehicle_defects_status_id', ['status', 'id'], unique=False)
        batch_op.create_index('ix_vehicle_defects_vehicle_status', ['vehicle_id', 'status'], unique=False)

    with op.batch_alter_table('vehicles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('open_defects', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('odometer', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('last_lat', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('last_lon', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('last_report_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('last_report_at', sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE vehicles SET status = 'out_of_service' WHERE status = 'grounded'")
    _seed_templates()


_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _new_id(prefix: str) -> str:
    """An id as server.ids.new_id makes them (copied: a migration does not import the app)."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return f"{prefix}-{''.join(reversed(chars))}"


def _seed_templates():
    """The default templates, each at version 1."""
    keys = ("code", "label_zh", "label_en", "type", "required", "severity", "photo_required_on_failure",
            "min", "max", "unit", "choices", "failing_choices")
    templates = sa.table('checklist_templates', sa.column('id', sa.String), sa.column('kind', sa.String),
                         sa.column('name', sa.String), sa.column('status', sa.String),
                         sa.column('current', sa.Integer), sa.column('version', sa.Integer),
                         sa.column('created_at', sa.DateTime(timezone=True)))
    versions = sa.table('checklist_template_versions', sa.column('template_id', sa.String),
                        sa.column('number', sa.Integer), sa.column('items', sa.JSON),
                        sa.column('published_at', sa.DateTime(timezone=True)))
    now = datetime.now(timezone.utc)
    rows = [dict(spec, id=_new_id("k")) for spec in DEFAULT_TEMPLATES]
    op.bulk_insert(templates, [{"id": r["id"], "kind": r["kind"], "name": r["name"], "status": "active",
                                "current": 1, "version": 1, "created_at": now} for r in rows])
    op.bulk_insert(versions, [{"template_id": r["id"], "number": 1, "published_at": now,
                               "items": [{key: item.get(key) for key in keys} for item in r["items"]]}
                              for r in rows])


def downgrade():
    op.execute("UPDATE vehicles SET status = 'grounded' WHERE status = 'out_of_service'")
    with op.batch_alter_table('vehicles', schema=None) as batch_op:
        batch_op.drop_column('last_report_at')
        batch_op.drop_column('last_report_id')
        batch_op.drop_column('last_lon')
        batch_op.drop_column('last_lat')
        batch_op.drop_column('odometer')
        batch_op.drop_column('open_defects')

    with op.batch_alter_table('vehicle_defects', schema=None) as batch_op:
        batch_op.drop_index('ix_vehicle_defects_vehicle_status')
        batch_op.drop_index('ix_vehicle_defects_status_id')

    op.drop_table('vehicle_defects')
    with op.batch_alter_table('shifts', schema=None) as batch_op:
        batch_op.drop_index('ix_shifts_courier_status')

    op.drop_table('shifts')
    op.drop_table('created_entities')
    with op.batch_alter_table('checklist_submissions', schema=None) as batch_op:
        batch_op.drop_index('ix_checklist_submissions_vehicle_time')
        batch_op.drop_index('ix_checklist_submissions_courier_time')

    op.drop_table('checklist_submissions')
    op.drop_table('checklist_template_versions')
    with op.batch_alter_table('checklist_templates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_checklist_templates_status'))
        batch_op.drop_index(batch_op.f('ix_checklist_templates_kind'))

    op.drop_table('checklist_templates')
