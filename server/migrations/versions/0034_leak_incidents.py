"""Information-leak incidents (信息泄露事件): the register, notifications, link uses and export notes

Revision ID: 0034_leak_incidents
Revises: 0033_training
Create Date: 2026-12-07 13:23:06

Link uses keep a keyed hash of the client address, never the address
(docs/security.md, "Information-leak detection").
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0034_leak_incidents'
down_revision = '0033_training'
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(sa.Text(), 'sqlite')


def upgrade():
    op.create_table('leak_export_notes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('staff_id', sa.String(length=32), nullable=False),
    sa.Column('what', sa.String(length=32), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_leak_export_notes'))
    )
    with op.batch_alter_table('leak_export_notes', schema=None) as batch_op:
        batch_op.create_index('ix_leak_export_notes_staff_at', ['staff_id', 'at'], unique=False)

    op.create_table('leak_link_uses',
    sa.Column('link_kind', sa.String(length=16), nullable=False),
    sa.Column('link_id', sa.String(length=64), nullable=False),
    sa.Column('address_hash', sa.String(length=32), nullable=False),
    sa.Column('first_seen', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('link_kind', 'link_id', 'address_hash', name=op.f('pk_leak_link_uses'))
    )
    with op.batch_alter_table('leak_link_uses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_leak_link_uses_first_seen'), ['first_seen'], unique=False)

    op.create_table('leak_incidents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('cause', sa.String(length=96), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('occurred_approximate', sa.Boolean(), nullable=False),
    sa.Column('discovered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('data_kinds', _JSON, nullable=False),
    sa.Column('people_affected', sa.Integer(), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('detail', _JSON, nullable=True),
    sa.Column('responsible_staff_id', sa.String(length=32), nullable=True),
    sa.Column('responsible_courier_id', sa.String(length=32), nullable=True),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('opened_by', sa.String(length=32), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.String(length=32), nullable=True),
    sa.Column('decision_note', sa.Text(), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_by', sa.String(length=32), nullable=True),
    sa.Column('resolution', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['decided_by'], ['staff_users.id'], name=op.f('fk_leak_incidents_decided_by_staff_users')),
    sa.ForeignKeyConstraint(['opened_by'], ['staff_users.id'], name=op.f('fk_leak_incidents_opened_by_staff_users')),
    sa.ForeignKeyConstraint(['resolved_by'], ['staff_users.id'], name=op.f('fk_leak_incidents_resolved_by_staff_users')),
    sa.ForeignKeyConstraint(['responsible_courier_id'], ['couriers.id'], name=op.f('fk_leak_incidents_responsible_courier_id_couriers')),
    sa.ForeignKeyConstraint(['responsible_staff_id'], ['staff_users.id'], name=op.f('fk_leak_incidents_responsible_staff_id_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_leak_incidents')),
    sa.UniqueConstraint('cause', name=op.f('uq_leak_incidents_cause'))
    )
    with op.batch_alter_table('leak_incidents', schema=None) as batch_op:
        batch_op.create_index('ix_leak_incidents_discovered_at', ['discovered_at'], unique=False)
        batch_op.create_index('ix_leak_incidents_status', ['status'], unique=False)

    op.create_table('leak_notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('audience', sa.String(length=16), nullable=False),
    sa.Column('notified_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['leak_incidents.id'], name=op.f('fk_leak_notifications_incident_id_leak_incidents')),
    sa.ForeignKeyConstraint(['recorded_by'], ['staff_users.id'], name=op.f('fk_leak_notifications_recorded_by_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_leak_notifications'))
    )
    with op.batch_alter_table('leak_notifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_leak_notifications_incident_id'), ['incident_id'], unique=False)



def downgrade():
    with op.batch_alter_table('leak_notifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_leak_notifications_incident_id'))

    op.drop_table('leak_notifications')
    with op.batch_alter_table('leak_incidents', schema=None) as batch_op:
        batch_op.drop_index('ix_leak_incidents_status')
        batch_op.drop_index('ix_leak_incidents_discovered_at')

    op.drop_table('leak_incidents')
    with op.batch_alter_table('leak_link_uses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_leak_link_uses_first_seen'))

    op.drop_table('leak_link_uses')
    with op.batch_alter_table('leak_export_notes', schema=None) as batch_op:
        batch_op.drop_index('ix_leak_export_notes_staff_at')

    op.drop_table('leak_export_notes')
