"""json text: every JSON column declared TEXT on SQLite, bare numbers stored before read back

Revision ID: 0022_json_text
Revises: 0021_access
Create Date: 2026-12-07 09:00:00

SQLite gives a column declared JSON NUMERIC affinity: the JSON text of a bare
number (a manifest row `5`, `1.5`, `1e3`) was stored as an INTEGER or REAL,
which the JSON reader refuses. Declared TEXT (server.models.types.JSONText),
every value stays the text written. Values stored as numbers before are
written back as their JSON text: from the number SQLite kept, so a REAL keeps
every digit it has (SQLite's own CAST would keep 15), a whole number written
as `1.0` reads back as 1, and an integer beyond 64 bits, already a REAL, stays
the nearest double. PostgreSQL keeps its json columns: nothing to do there.
The downgrade declares the columns JSON again (bare numbers become numbers again,
as the code of that revision stored them).
"""
import json

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0022_json_text'
down_revision = '0021_access'
branch_labels = None
depends_on = None

# Every JSON column at this revision: table -> its primary key and its (column, nullable).
JSON_COLUMNS = {
    'audit_log': ('id', [('before', True), ('after', True)]),
    'checklist_submissions': ('id', [('answers', False), ('failed', False), ('flags', False)]),
    'checklist_template_versions': ('id', [('items', False)]),
    'couriers': ('id', [('grade_detail', True)]),
    'customer_links': ('id', [('slots', False)]),
    'events': ('position', [('data', False)]),
    'grade_changes': ('id', [('reasons', False)]),
    'handover_exceptions': ('id', [('detail', False)]),
    'handover_steps': ('id', [('data', False)]),
    'handovers': ('id', [('items', True), ('fees', True), ('photos', True), ('authorization', True)]),
    'job_runs': ('id', [('counts', True)]),
    'manifest_quarantine': ('id', [('raw', True), ('reasons', False)]),
    'op_log': ('id', [('payload', False), ('result', False)]),
    'shifts': ('id', [('flags', False)]),
    'task_events': ('id', [('data', True)]),
    'vehicle_defects': ('id', [('value', False), ('photos', False)]),
    'violations': ('id', [('evidence', False)]),
    'webhook_subscriptions': ('id', [('event_types', False)]),
}
# A rebuilt table keeps AUTOINCREMENT only when asked, and its sqlite_sequence row (the highest
# position ever given, which may exceed what is left) only when put back.
AUTOINCREMENT = {'events'}


def _redeclare(from_type, to_type) -> None:
    """Declare every JSON column of SQLite's tables anew (each table rebuilt once)."""
    bind = op.get_bind()
    sequences = dict(bind.execute(sa.text('SELECT name, seq FROM sqlite_sequence')).all())
    for table, (_, columns) in JSON_COLUMNS.items():
        table_kwargs = {'sqlite_autoincrement': True} if table in AUTOINCREMENT else {}
        with op.batch_alter_table(table, schema=None, table_kwargs=table_kwargs) as batch_op:
            for column, nullable in columns:
                batch_op.alter_column(column, existing_type=from_type, type_=to_type, existing_nullable=nullable)
        if table in sequences:
            bind.execute(sa.text('DELETE FROM sqlite_sequence WHERE name = :name'), {'name': table})
            bind.execute(sa.text('INSERT INTO sqlite_sequence (name, seq) VALUES (:name, :seq)'),
                         {'name': table, 'seq': sequences[table]})


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name != 'sqlite':
        return
    # The numbers, read before the rebuild: its copy would turn a REAL into 15 digits of text.
    numbers = {}
    for table, (key, columns) in JSON_COLUMNS.items():
        for column, _ in columns:
            numbers[table, key, column] = bind.execute(sa.text(
                f'SELECT "{key}", "{column}" FROM "{table}" WHERE typeof("{column}") IN (\'integer\', \'real\')'
            )).all()
    _redeclare(sa.JSON(), sa.Text())
    for (table, key, column), rows in numbers.items():
        for row_key, number in rows:
            bind.execute(sa.text(f'UPDATE "{table}" SET "{column}" = :text WHERE "{key}" = :key'),
                         {'text': json.dumps(number), 'key': row_key})


def downgrade():
    if op.get_bind().dialect.name != 'sqlite':
        return
    _redeclare(sa.Text(), sa.JSON())
