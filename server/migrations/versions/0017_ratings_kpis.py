"""ratings and KPIs: customers' 1–5 ratings (one per task), inspection counts, couriers' depot, report indexes

Revision ID: 0017_ratings_kpis
Revises: 0014_job_runs
Create Date: 2026-11-26 06:00:00

The service-quality report (docs/kpis.md) aggregates in SQL: an inspection's
parcel lines, damaged lines and short lines are kept as numbers beside the
items JSON (existing inspections are counted here from their JSON), couriers
get the depot they work out of (none until dispatch sets it), complaints an
index on when they were received, and ratings their own table whose unique
task key refuses a second rating.
"""
import json

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0017_ratings_kpis'
down_revision = '0014_job_runs'
branch_labels = None
depends_on = None


def _counts(items) -> tuple[int, int, int]:
    """(lines, damaged, short) of an inspection summary, as server.services.handover.inspect counts them."""
    lines = [item for item in items if isinstance(item, dict)]
    damaged = sum(1 for item in lines if item.get("condition") == "damaged")
    short = sum(1 for item in lines if item.get("condition") == "missing"
                or item.get("counted", 0) < item.get("expected", 0))
    return len(lines), damaged, short


def upgrade():
    op.create_table('ratings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.String(length=32), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('comment', sa.String(length=500), nullable=True),
    sa.Column('link_id', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('score BETWEEN 1 AND 5', name=op.f('ck_ratings_score_1_to_5')),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_ratings_task_id_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ratings')),
    sa.UniqueConstraint('task_id', name=op.f('uq_ratings_task_id'))
    )
    with op.batch_alter_table('ratings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ratings_created_at'), ['created_at'], unique=False)

    with op.batch_alter_table('handovers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('items_inspected', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('items_damaged', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('items_short', sa.Integer(), nullable=True))
    with op.batch_alter_table('couriers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('depot', sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f('ix_couriers_depot'), ['depot'], unique=False)
    with op.batch_alter_table('complaints', schema=None) as batch_op:
        batch_op.create_index('ix_complaints_received_at', ['received_at'], unique=False)

    # Inspections already made: count their lines from the JSON (pickups have no inspection).
    conn = op.get_bind()
    handovers = sa.table('handovers', sa.column('id', sa.Integer), sa.column('items', sa.JSON),
                         sa.column('inspection', sa.String), sa.column('items_inspected', sa.Integer),
                         sa.column('items_damaged', sa.Integer), sa.column('items_short', sa.Integer))
    rows = conn.execute(sa.select(handovers.c.id, handovers.c["items"]).where(handovers.c.inspection.is_not(None)))
    for handover_id, items in rows.fetchall():
        if isinstance(items, str):
            items = json.loads(items)
        lines, damaged, short = _counts(items or [])
        conn.execute(handovers.update().where(handovers.c.id == handover_id).values(
            items_inspected=lines, items_damaged=damaged, items_short=short))


def downgrade():
    with op.batch_alter_table('complaints', schema=None) as batch_op:
        batch_op.drop_index('ix_complaints_received_at')
    with op.batch_alter_table('couriers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_couriers_depot'))
        batch_op.drop_column('depot')
    with op.batch_alter_table('handovers', schema=None) as batch_op:
        batch_op.drop_column('items_short')
        batch_op.drop_column('items_damaged')
        batch_op.drop_column('items_inspected')
    with op.batch_alter_table('ratings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ratings_created_at'))
    op.drop_table('ratings')
