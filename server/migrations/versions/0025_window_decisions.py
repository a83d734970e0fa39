"""window decisions: every agreed window keeps its own outcome; attempts numbered; a failed task says why

Revision ID: 0025_window_decisions
Revises: 0023_op_ids
Create Date: 2026-11-26 09:00:00

Issue 21, "Appointments that cannot be rewritten". Until now an appointment held one
status for whatever window was current, so agreeing a new window after a miss (or
reporting the customer absent) wiped the decision. Now each window keeps its own:
`appointment_windows.outcome` (kept | late | missed | not_attempted | replaced | review),
when and by what it was decided, the arrival and notice it was decided on, why its
attempt failed, and dispatch's review. `appointments.attempt` numbers the attempts,
`appointments.notice_suspect` keeps a notice given on a flagged clock, and
`tasks.failure_reason` says why a `failed` task failed. `late_without_notice` is now
recorded once per window, not once per task: its dedupe key names the window.

Rows already stored:
- the current window (agreed, or the promised proposal) of an appointment decided
  kept, late or missed takes that outcome, its arrival and notice (decided_by
  `migration`, attempt 1);
- an appointment the old `stop.customer_absent` set back to unconfirmed: its agreed
  window is kept or late by its arrival, with failure_reason customer_absent, and
  the appointment shows that outcome (the task's status is left as it was);
- a `late_without_notice` keyed by its task is keyed by the window it was about: the
  newest agreed or superseded window of the task that ended at or before it occurred
  (a window left undecided by the old code takes missed, or late, from it).
Windows superseded before this revision were never decided: their outcome stays null.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0025_window_decisions'
down_revision = '0024_op_time'
branch_labels = None
depends_on = None

windows = sa.table(
    'appointment_windows', sa.column('id', sa.Integer), sa.column('appointment_id', sa.Integer),
    sa.column('start', sa.DateTime(timezone=True)), sa.column('end', sa.DateTime(timezone=True)), sa.column('status', sa.String),
    sa.column('attempt', sa.Integer), sa.column('outcome', sa.String), sa.column('decided_at', sa.DateTime(timezone=True)),
    sa.column('decided_by', sa.String), sa.column('arrived_at', sa.DateTime(timezone=True)), sa.column('notice_at', sa.DateTime(timezone=True)),
    sa.column('notice_in_time', sa.Boolean), sa.column('failure_reason', sa.String))
appointments = sa.table(
    'appointments', sa.column('id', sa.Integer), sa.column('task_id', sa.String), sa.column('status', sa.String),
    sa.column('window_start', sa.DateTime(timezone=True)), sa.column('window_end', sa.DateTime(timezone=True)),
    sa.column('arrived_at', sa.DateTime(timezone=True)), sa.column('notice_at', sa.DateTime(timezone=True)),
    sa.column('notice_in_time', sa.Boolean), sa.column('exception', sa.String), sa.column('updated_at', sa.DateTime(timezone=True)))
violations = sa.table(
    'violations', sa.column('id', sa.Integer), sa.column('task_id', sa.String), sa.column('code', sa.String),
    sa.column('occurred_at', sa.DateTime(timezone=True)), sa.column('dedupe_key', sa.String))


def upgrade():
    with op.batch_alter_table('appointment_windows', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempt', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('outcome', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('decided_by', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('arrived_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('notice_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('notice_in_time', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('failure_reason', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('review_reason', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('provisional_outcome', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('reviewed_by_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('review_note', sa.String(length=500), nullable=True))
        batch_op.create_index(batch_op.f('ix_appointment_windows_outcome'), ['outcome'], unique=False)
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notice_suspect', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('attempt', sa.Integer(), nullable=False, server_default='1'))
    with op.batch_alter_table('contact_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempt', sa.Integer(), nullable=True))
    # ALTER TABLE ... ADD COLUMN, not batch mode: copying a table other tables reference fails their keys on SQLite.
    op.add_column('tasks', sa.Column('failure_reason', sa.String(length=32), nullable=True))
    _keep_decisions()
    _key_violations_by_window()


def _of_appointment(column):
    """The value of an appointments column for the window's appointment (a correlated subquery)."""
    return sa.select(column).where(appointments.c.id == windows.c.appointment_id).scalar_subquery()


def _keep_decisions():
    """The current window of a decided appointment takes its decision; an absent customer's too."""
    current = sa.exists().where(appointments.c.id == windows.c.appointment_id,
                                appointments.c.window_start == windows.c.start,
                                appointments.c.window_end == windows.c.end)
    facts = {"decided_at": _of_appointment(appointments.c.updated_at), "decided_by": "migration", "attempt": 1,
             "arrived_at": _of_appointment(appointments.c.arrived_at),
             "notice_at": _of_appointment(appointments.c.notice_at),
             "notice_in_time": _of_appointment(appointments.c.notice_in_time)}
    decided = current.where(appointments.c.status.in_(('kept', 'late', 'missed')))
    op.execute(windows.update().where(windows.c.status.in_(('agreed', 'proposed')), decided)
               .values(outcome=_of_appointment(appointments.c.status), **facts))
    absent = current.where(appointments.c.status == 'unconfirmed', appointments.c.exception == 'customer_absent',
                           appointments.c.arrived_at.is_not(None))
    arrival = _of_appointment(appointments.c.arrived_at)
    op.execute(windows.update().where(windows.c.status == 'agreed', absent).values(
        outcome=sa.case((arrival <= windows.c.end, 'kept'), else_='late'), failure_reason='customer_absent',
        **facts))
    # The appointment shows its current window's outcome (it is no longer set back to unconfirmed).
    outcome = (sa.select(windows.c.outcome).where(windows.c.appointment_id == appointments.c.id,
                                                  windows.c.failure_reason == 'customer_absent')
               .order_by(windows.c.id.desc()).limit(1).scalar_subquery())
    op.execute(appointments.update().where(appointments.c.status == 'unconfirmed',
                                           appointments.c.exception == 'customer_absent',
                                           appointments.c.arrived_at.is_not(None))
               .values(status=sa.func.coalesce(outcome, appointments.c.status)))
    op.execute(windows.update().where(windows.c.attempt.is_(None), windows.c.status == 'agreed').values(attempt=1))


def _key_violations_by_window():
    """late_without_notice keyed by task -> keyed by the window it was about."""
    about = (sa.select(windows.c.id)
             .select_from(windows.join(appointments, appointments.c.id == windows.c.appointment_id))
             .where(appointments.c.task_id == violations.c.task_id, windows.c.status.in_(('agreed', 'superseded')),
                    windows.c.end <= violations.c.occurred_at)
             .order_by(windows.c.end.desc(), windows.c.id.desc()).limit(1).scalar_subquery())
    old_key = violations.c.dedupe_key == sa.literal('late_without_notice:') + violations.c.task_id
    bind = op.get_bind()
    rows = bind.execute(sa.select(violations.c.id, violations.c.task_id, violations.c.occurred_at, about.label('w'))
                        .where(violations.c.code == 'late_without_notice', old_key)).all()
    for violation_id, task_id, occurred_at, window_id in rows:
        if window_id is None:
            continue
        bind.execute(violations.update().where(violations.c.id == violation_id)
                     .values(dedupe_key=f"late_without_notice:{task_id}:{window_id}"))
        window_end = bind.execute(sa.select(windows.c.end).where(windows.c.id == window_id)).scalar()
        bind.execute(windows.update().where(windows.c.id == window_id, windows.c.outcome.is_(None)).values(
            outcome='missed' if occurred_at == window_end else 'late', decided_by='migration', attempt=1))


def downgrade():
    # Back to one late_without_notice per task: the first of each task keeps the task's key, later ones
    # (a second window's, recorded since) keep theirs, which the old code never asks for.
    bind = op.get_bind()
    first = (sa.select(sa.func.min(violations.c.id)).where(violations.c.code == 'late_without_notice')
             .group_by(violations.c.task_id))
    for violation_id, task_id in bind.execute(sa.select(violations.c.id, violations.c.task_id)
                                              .where(violations.c.id.in_(first))).all():
        bind.execute(violations.update().where(violations.c.id == violation_id)
                     .values(dedupe_key=f"late_without_notice:{task_id}"))
    op.drop_column('tasks', 'failure_reason')
    op.drop_column('contact_attempts', 'attempt')
    op.drop_column('appointments', 'attempt')
    op.drop_column('appointments', 'notice_suspect')
    op.drop_index(op.f('ix_appointment_windows_outcome'), table_name='appointment_windows')
    for column in ('review_note', 'reviewed_at', 'reviewed_by_id', 'provisional_outcome', 'review_reason',
                   'failure_reason', 'notice_in_time', 'notice_at', 'arrived_at', 'decided_by', 'decided_at',
                   'outcome', 'attempt'):
        op.drop_column('appointment_windows', column)
