"""normalised identifiers: employee numbers, waybills and plates trimmed and upper-cased

Revision ID: 0003_normalised_identifiers
Revises: 0002_sync_docs
Create Date: 2026-11-24 02:00:00

Input is normalised from now on (schemas.common.identifier), so the existing
unique constraints hold on the normalised value once older rows are normalised
too. Two old rows that differ only by case or surrounding whitespace make this
fail on the unique constraint: merge them by hand first. SQLite's UPPER() folds
ASCII only; identifiers are ASCII (waybills, employee numbers) or caseless
(the province characters of plates).
"""
from alembic import op
import sqlalchemy as sa


revision = '0003_normalised_identifiers'
down_revision = '0002_sync_docs'
branch_labels = None
depends_on = None

_COLUMNS = (('couriers', 'employee_no'), ('tasks', 'waybill_no'), ('vehicles', 'plate'))


def upgrade():
    for table, column in _COLUMNS:
        op.execute(sa.text(f'UPDATE {table} SET {column} = UPPER(TRIM({column}, :ws)) '
                           f'WHERE {column} != UPPER(TRIM({column}, :ws))')
                   .bindparams(ws=' \t\r\n'))


def downgrade():
    # The original spellings are not kept: nothing to undo.
    pass
