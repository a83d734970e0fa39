"""violation severity: each violation keeps what it weighs in the grade (a failed checklist item weighs its item's severity)

Revision ID: 0020_violation_severity
Revises: 0017_ratings_kpis
Create Date: 2026-11-24 07:30:00

Until now every violation weighed its code's severity, so every failed conduct item
counted as minor whatever the template said. Existing rows take their code's severity,
and a failed checklist item the severity its evidence recorded.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0020_violation_severity'
down_revision = '0017_ratings_kpis'
branch_labels = None
depends_on = None

# The codes' severities when this revision was written (schemas.vocab.VIOLATION_SEVERITY then).
_SEVERITY = {"late_without_notice": "minor", "left_before_inspection": "major", "private_surcharge": "critical",
             "gift_not_disclosed": "major", "conduct_item_failed": "minor", "complaint_upheld": "major"}


def upgrade():
    with op.batch_alter_table('violations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('severity', sa.String(length=16), nullable=False, server_default='minor'))
    violations = sa.table('violations', sa.column('id', sa.Integer), sa.column('code', sa.String),
                          sa.column('severity', sa.String), sa.column('evidence', sa.JSON))
    for code, severity in _SEVERITY.items():
        op.execute(violations.update().where(violations.c.code == code).values(severity=severity))
    bind = op.get_bind()
    rows = bind.execute(sa.select(violations.c.id, violations.c.evidence)
                        .where(violations.c.code == 'conduct_item_failed')).all()
    for row_id, evidence in rows:
        severity = (evidence or {}).get('severity')
        if severity in ('critical', 'major', 'minor'):
            bind.execute(violations.update().where(violations.c.id == row_id).values(severity=severity))
    with op.batch_alter_table('violations', schema=None) as batch_op:
        batch_op.alter_column('severity', server_default=None)


def downgrade():
    with op.batch_alter_table('violations', schema=None) as batch_op:
        batch_op.drop_column('severity')
