"""checks before work: vans' spans off the road; the vehicle checks' safety items made critical (a new version)

Revision ID: 0026_checks_before_work
Revises: 0027_kpi_facts
Create Date: 2026-12-07 12:00:00

`vehicle_groundings` keeps when each van was off the road (a critical defect a check
found, or dispatch's word), so that work an offline handheld pushes hours late is judged
by whether its van could be driven then (server.services.duty). A van off the road now
gets a span from its oldest open critical defect (reason critical_defect), or else from
its last update (reason dispatch): the best this database knows.

The vehicle checks' safety items (technical_condition, safety_equipment: what
server.checklist_defaults.SAFETY_ITEMS named when this revision was written) ground the
van when they fail. Every active vehicle check template whose current version has one
of them below critical gets the next version, with those items critical and nothing
else changed; the version before is superseded now and kept, as is every answer given
to it (its grace period applies as to any new version). Devices hear of it through the
change feed (one change row per template, in every courier's scope). The downgrade
drops the spans and keeps the published versions: they are history, like any other.
"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0026_checks_before_work'
down_revision = '0027_kpi_facts'
branch_labels = None
depends_on = None

# The safety items when this revision was written (server.checklist_defaults.SAFETY_ITEMS then).
_SAFETY_ITEMS = ("technical_condition", "safety_equipment")
_VEHICLE_CHECKS = ("vehicle.pre_trip", "vehicle.post_trip")

vehicles = sa.table('vehicles', sa.column('id', sa.String), sa.column('status', sa.String),
                    sa.column('updated_at', sa.DateTime(timezone=True)))
defects = sa.table('vehicle_defects', sa.column('vehicle_id', sa.String), sa.column('status', sa.String),
                   sa.column('severity', sa.String), sa.column('reported_at', sa.DateTime(timezone=True)))
groundings = sa.table('vehicle_groundings', sa.column('vehicle_id', sa.String), sa.column('reason', sa.String),
                      sa.column('started_at', sa.DateTime(timezone=True)))
templates = sa.table('checklist_templates', sa.column('id', sa.String), sa.column('kind', sa.String),
                     sa.column('status', sa.String), sa.column('current', sa.Integer),
                     sa.column('version', sa.Integer))
versions = sa.table('checklist_template_versions', sa.column('template_id', sa.String),
                    sa.column('number', sa.Integer), sa.column('items', sa.JSON),
                    sa.column('published_at', sa.DateTime(timezone=True)),
                    sa.column('superseded_at', sa.DateTime(timezone=True)))
changes = sa.table('changes', sa.column('entity', sa.String), sa.column('entity_id', sa.String),
                   sa.column('courier_id', sa.String), sa.column('at', sa.DateTime(timezone=True)))


def upgrade():
    op.create_table('vehicle_groundings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('vehicle_id', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.String(length=16), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('submission_id', sa.String(length=36), nullable=True),
    sa.ForeignKeyConstraint(['vehicle_id'], ['vehicles.id'], name=op.f('fk_vehicle_groundings_vehicle_id_vehicles')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vehicle_groundings'))
    )
    with op.batch_alter_table('vehicle_groundings', schema=None) as batch_op:
        batch_op.create_index('ix_vehicle_groundings_vehicle_started', ['vehicle_id', 'started_at'], unique=False)
    _spans_of_vans_off_the_road()
    _publish_safety_revision()


def _spans_of_vans_off_the_road():
    """A span, still open, for every van not in service now."""
    oldest_critical = (sa.select(sa.func.min(defects.c.reported_at))
                       .where(defects.c.vehicle_id == vehicles.c.id, defects.c.status == 'open',
                              defects.c.severity == 'critical').scalar_subquery())
    op.execute(groundings.insert().from_select(
        ['vehicle_id', 'reason', 'started_at'],
        sa.select(vehicles.c.id,
                  sa.case((oldest_critical.is_(None), sa.literal('dispatch')), else_=sa.literal('critical_defect')),
                  sa.func.coalesce(oldest_critical, vehicles.c.updated_at))
        .where(vehicles.c.status != 'in_service')))


def _publish_safety_revision():
    """The next version of each active vehicle check whose current version has a safety item below critical."""
    bind = op.get_bind()
    now = datetime.now(timezone.utc)
    rows = bind.execute(sa.select(templates.c.id, templates.c.current, versions.c['items'])
                        .join(versions, sa.and_(versions.c.template_id == templates.c.id,
                                                versions.c.number == templates.c.current))
                        .where(templates.c.status == 'active', templates.c.kind.in_(_VEHICLE_CHECKS))).all()
    for template_id, current, items in rows:
        if not any(item["code"] in _SAFETY_ITEMS and item["severity"] != "critical" for item in items):
            continue
        raised = [dict(item, severity="critical") if item["code"] in _SAFETY_ITEMS else item for item in items]
        bind.execute(versions.update().where(versions.c.template_id == template_id, versions.c.number == current)
                     .values(superseded_at=now))
        bind.execute(versions.insert().values(template_id=template_id, number=current + 1, items=raised,
                                              published_at=now))
        bind.execute(templates.update().where(templates.c.id == template_id)
                     .values(current=current + 1, version=templates.c.version + 1))
        bind.execute(changes.insert().values(entity='checklist_template', entity_id=template_id, courier_id=None,
                                             at=now))


def downgrade():
    with op.batch_alter_table('vehicle_groundings', schema=None) as batch_op:
        batch_op.drop_index('ix_vehicle_groundings_vehicle_started')
    op.drop_table('vehicle_groundings')
