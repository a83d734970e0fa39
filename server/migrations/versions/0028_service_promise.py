"""Service products and the promise: the products (当日达, 次日达, 隔日达, 标快) and each task's promise

Revision ID: 0028_service_promise
Revises: 0026_checks_before_work
Create Date: 2026-12-07 11:00:00

`service_products` holds the published products, seeded with the defaults of
docs/decisions.md ("Issue 22: the promise"); admin edits them. A task gains the
product, the collection time (揽收) and the promised time and depot-local day the
product gave it. Tasks stored before this revision have none of them: their
promise is unknown (the figures count them apart, never as a pass); nothing is
invented for them.
"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa

import server.clock


# revision identifiers, used by Alembic.
revision = '0028_service_promise'
down_revision = '0026_checks_before_work'
branch_labels = None
depends_on = None

DEFAULTS = [
    {"code": "same_day", "name_zh": "当日达", "name_en": "Same day", "end_of_day_after": 0, "within_hours": None},
    {"code": "next_day", "name_zh": "次日达", "name_en": "Next day", "end_of_day_after": 1, "within_hours": None},
    {"code": "day_after", "name_zh": "隔日达", "name_en": "Day after next", "end_of_day_after": 2,
     "within_hours": None},
    {"code": "standard", "name_zh": "标快", "name_en": "Standard express", "end_of_day_after": None,
     "within_hours": 72},
]


def upgrade():
    products = op.create_table('service_products',
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name_zh', sa.String(length=100), nullable=False),
    sa.Column('name_en', sa.String(length=100), nullable=False),
    sa.Column('end_of_day_after', sa.Integer(), nullable=True),
    sa.Column('within_hours', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('updated_at', server.clock.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_service_products'))
    )
    seeded = datetime(2020, 1, 1, tzinfo=timezone.utc)  # before any fact (the demo test dates every instant)
    op.bulk_insert(products, [{**row, "active": True, "updated_at": seeded} for row in DEFAULTS])
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('service_product', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('collected_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('promised_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('promise_date', sa.Date(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_tasks_service_product_service_products'), 'service_products',
                                    ['service_product'], ['code'])
        batch_op.create_index(batch_op.f('ix_tasks_promise_date'), ['promise_date'], unique=False)
        batch_op.create_index('ix_tasks_status_promised_at', ['status', 'promised_at'], unique=False)


def downgrade():
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_tasks_status_promised_at')
        batch_op.drop_index(batch_op.f('ix_tasks_promise_date'))
        batch_op.drop_constraint(batch_op.f('fk_tasks_service_product_service_products'), type_='foreignkey')
        batch_op.drop_column('promise_date')
        batch_op.drop_column('promised_at')
        batch_op.drop_column('collected_at')
        batch_op.drop_column('service_product')
    op.drop_table('service_products')
