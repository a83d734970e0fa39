"""KPI facts: complaint contacts and reopenings; refused handover steps indexed by task

Revision ID: 0027_kpi_facts
Revises: 0023_op_ids
Create Date: 2026-12-01 09:00:00

First-contact resolution (投诉一次性解决率) is derived from the contacts with the
customer and the reopenings of a complaint (docs/kpis.md), no longer from the
office's `resolved_at_first_contact` box. Complaints stored before this revision
had no contacts recorded, so their contacts are written from what was recorded:
- every first response is a contact of kind `first_response`, at its time, by
  its author, with its text;
- a resolved complaint whose office said it was *not* resolved at first contact
  gets one `legacy` contact at its resolution time, standing for the contacts
  that were made and not recorded one by one: with it the complaint has two
  contacts by its resolution and stays out of the numerator, as the office said.
  A complaint the office said was resolved at first contact has its one contact
  and counts, as before. No time other than those recorded is invented.

`ix_handover_steps_rejected` (task_id, kind, code) WHERE outcome = 'rejected': the
KPI report reads each task's refusals for order and unauthorised drops from the
refused steps alone (signoff_compliance, delivered_to_address).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0027_kpi_facts'
down_revision = '0025_window_decisions'
branch_labels = None
depends_on = None

complaints = sa.table('complaints', sa.column('id', sa.Integer), sa.column('first_response_at', sa.DateTime),
                      sa.column('first_response_by', sa.String), sa.column('first_response_text', sa.Text),
                      sa.column('resolved_at', sa.DateTime), sa.column('resolved_at_first_contact', sa.Boolean))
_REJECTED = sa.text("outcome = 'rejected'")


def upgrade():
    op.create_table('complaint_contacts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('complaint_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('contacted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['complaint_id'], ['complaints.id'],
                            name=op.f('fk_complaint_contacts_complaint_id_complaints'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['recorded_by'], ['staff_users.id'],
                            name=op.f('fk_complaint_contacts_recorded_by_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_complaint_contacts'))
    )
    op.create_index('ix_complaint_contacts_complaint_id_contacted_at', 'complaint_contacts',
                    ['complaint_id', 'contacted_at'], unique=False)
    op.create_table('complaint_reopenings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('complaint_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('reopened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reopened_by', sa.String(length=32), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_by', sa.String(length=32), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('resolution_note', sa.Text(), nullable=True),
    sa.Column('resolved_at_first_contact', sa.Boolean(), nullable=True),
    sa.Column('satisfaction', sa.String(length=16), nullable=True),
    sa.Column('satisfaction_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['complaint_id'], ['complaints.id'],
                            name=op.f('fk_complaint_reopenings_complaint_id_complaints'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reopened_by'], ['staff_users.id'],
                            name=op.f('fk_complaint_reopenings_reopened_by_staff_users')),
    sa.ForeignKeyConstraint(['resolved_by'], ['staff_users.id'],
                            name=op.f('fk_complaint_reopenings_resolved_by_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_complaint_reopenings'))
    )
    op.create_index(op.f('ix_complaint_reopenings_complaint_id'), 'complaint_reopenings', ['complaint_id'],
                    unique=False)
    op.create_index('ix_handover_steps_rejected', 'handover_steps', ['task_id', 'kind', 'code'], unique=False,
                    sqlite_where=_REJECTED, postgresql_where=_REJECTED)
    contacts = sa.table('complaint_contacts', sa.column('complaint_id', sa.Integer), sa.column('kind', sa.String),
                        sa.column('note', sa.Text), sa.column('contacted_at', sa.DateTime),
                        sa.column('recorded_by', sa.String))
    op.execute(contacts.insert().from_select(
        ['complaint_id', 'kind', 'note', 'contacted_at', 'recorded_by'],
        sa.select(complaints.c.id, sa.literal('first_response'), complaints.c.first_response_text,
                  complaints.c.first_response_at, complaints.c.first_response_by)
        .where(complaints.c.first_response_at.is_not(None))))
    op.execute(contacts.insert().from_select(
        ['complaint_id', 'kind', 'note', 'contacted_at', 'recorded_by'],
        sa.select(complaints.c.id, sa.literal('legacy'),
                  sa.literal('Contacts before 0027 were not recorded one by one; the office said this complaint '
                             'was not resolved at first contact.'),
                  complaints.c.resolved_at, sa.null())
        .where(complaints.c.resolved_at.is_not(None), complaints.c.resolved_at_first_contact.is_(False))))


def downgrade():
    op.drop_index('ix_handover_steps_rejected', table_name='handover_steps',
                  sqlite_where=_REJECTED, postgresql_where=_REJECTED)
    op.drop_index(op.f('ix_complaint_reopenings_complaint_id'), table_name='complaint_reopenings')
    op.drop_table('complaint_reopenings')
    op.drop_index('ix_complaint_contacts_complaint_id_contacted_at', table_name='complaint_contacts')
    op.drop_table('complaint_contacts')
