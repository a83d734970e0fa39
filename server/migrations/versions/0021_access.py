"""access: no secret stored as issued: receipt page tokens by hash and sealed, handover PINs sealed

Revision ID: 0021_access
Revises: 0020_violation_severity
Create Date: 2026-11-24 09:00:00

Receipt page tokens were stored as issued (looked up by equality) and copied, inside the
page's address, into handheld docs and the op log's push results; the customer's handover
PIN was stored in clear. Existing tokens keep working: each is found by its SHA-256 and
kept sealed (server.sealing, a key derived from FIELDOPS_SECRET_KEY) to be shown again;
stored docs and op results hold a mark instead of the address (sync responses put the
address back). The downgrade unseals them again (with the same SECRET_KEY).
"""
import hashlib
import json
import re

from alembic import op
import sqlalchemy as sa

from server import sealing


# revision identifiers, used by Alembic.
revision = '0021_access'
down_revision = '0020_violation_severity'
branch_labels = None
depends_on = None

# The purposes and the doc mark as server.services.receipts and .handover wrote them at this revision.
_TOKEN_SEALING = "fieldops receipt page token"
_PIN_SEALING = "fieldops handover pin"
_DOC_MARK = "fieldops-sealed-receipt:"
_ADDRESS = re.compile(r'[^"\s]*/r/(for_[A-Za-z0-9_-]{43})')
_MARK = re.compile(r"fieldops-sealed-receipt:([A-Za-z0-9_-]+):([A-Za-z0-9_=.-]+)")

receipts = sa.table('receipts', sa.column('id', sa.String), sa.column('token', sa.String),
                    sa.column('token_hash', sa.String), sa.column('token_sealed', sa.String))
handovers = sa.table('handovers', sa.column('id', sa.Integer), sa.column('task_id', sa.String),
                     sa.column('pin_for_customer', sa.String), sa.column('pin_sealed', sa.String))
sync_docs = sa.table('sync_docs', sa.column('entity', sa.String), sa.column('entity_id', sa.String),
                     sa.column('body', sa.Text))
op_log = sa.table('op_log', sa.column('id', sa.Integer), sa.column('result', sa.JSON))


def _rewrite(pattern: str, replace) -> None:
    """Rewrite the receipt addresses (or marks) in stored task docs and op results."""
    bind = op.get_bind()
    for entity, entity_id, body in bind.execute(sa.select(sync_docs).where(sync_docs.c.body.like(pattern))).all():
        bind.execute(sync_docs.update().where(sync_docs.c.entity == entity, sync_docs.c.entity_id == entity_id)
                     .values(body=replace(body)))
    rows = bind.execute(sa.select(op_log.c.id, op_log.c.result)
                        .where(sa.cast(op_log.c.result, sa.Text).like(pattern))).all()
    for row_id, result in rows:
        bind.execute(op_log.update().where(op_log.c.id == row_id)
                     .values(result=json.loads(replace(json.dumps(result)))))


def upgrade():
    with op.batch_alter_table('receipts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('token_sealed', sa.String(length=200), nullable=True))
    with op.batch_alter_table('handovers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pin_sealed', sa.String(length=200), nullable=True))
    bind = op.get_bind()
    marks = {}
    for receipt_id, token in bind.execute(sa.select(receipts.c.id, receipts.c.token)).all():
        sealed = sealing.seal(token, purpose=_TOKEN_SEALING, bound_to=receipt_id)
        marks[token] = f"{_DOC_MARK}{receipt_id}:{sealed}"
        bind.execute(receipts.update().where(receipts.c.id == receipt_id).values(
            token_hash=hashlib.sha256(token.encode()).hexdigest(), token_sealed=sealed))
    for handover_id, task_id, pin in bind.execute(sa.select(handovers.c.id, handovers.c.task_id,
                                                            handovers.c.pin_for_customer)
                                                  .where(handovers.c.pin_for_customer.isnot(None))).all():
        bind.execute(handovers.update().where(handovers.c.id == handover_id).values(
            pin_sealed=sealing.seal(pin, purpose=_PIN_SEALING, bound_to=task_id)))
    # An address whose token is unknown (no such receipt) cannot be sealed: it becomes an empty address.
    _rewrite('%/r/for_%', lambda text: _ADDRESS.sub(lambda m: marks.get(m[1], ""), text))
    with op.batch_alter_table('receipts', schema=None) as batch_op:
        batch_op.drop_constraint('uq_receipts_token', type_='unique')
        batch_op.drop_column('token')
        batch_op.alter_column('token_hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column('token_sealed', existing_type=sa.String(length=200), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_receipts_token_hash'), ['token_hash'])
    with op.batch_alter_table('handovers', schema=None) as batch_op:
        batch_op.drop_column('pin_for_customer')


def downgrade():
    with op.batch_alter_table('receipts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token', sa.String(length=64), nullable=True))
    with op.batch_alter_table('handovers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pin_for_customer', sa.String(length=6), nullable=True))
    bind = op.get_bind()
    for receipt_id, sealed in bind.execute(sa.select(receipts.c.id, receipts.c.token_sealed)).all():
        bind.execute(receipts.update().where(receipts.c.id == receipt_id).values(
            token=sealing.unseal(sealed, purpose=_TOKEN_SEALING, bound_to=receipt_id)))
    for handover_id, task_id, sealed in bind.execute(sa.select(handovers.c.id, handovers.c.task_id,
                                                               handovers.c.pin_sealed)
                                                     .where(handovers.c.pin_sealed.isnot(None))).all():
        bind.execute(handovers.update().where(handovers.c.id == handover_id).values(
            pin_for_customer=sealing.unseal(sealed, purpose=_PIN_SEALING, bound_to=task_id)))
    # The older code sent stored docs as they are: a mark becomes the page's path (its host is not known here).
    _rewrite(f'%{_DOC_MARK}%', lambda text: _MARK.sub(
        lambda m: "/r/" + sealing.unseal(m[2], purpose=_TOKEN_SEALING, bound_to=m[1]), text))
    with op.batch_alter_table('receipts', schema=None) as batch_op:
        batch_op.drop_constraint('uq_receipts_token_hash', type_='unique')
        batch_op.drop_column('token_sealed')
        batch_op.drop_column('token_hash')
        batch_op.alter_column('token', existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_receipts_token'), ['token'])
    with op.batch_alter_table('handovers', schema=None) as batch_op:
        batch_op.drop_column('pin_sealed')
