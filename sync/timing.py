"""What time an op happened: decided once, here, for every rule and the ledger.

A handheld's clock can be wrong in every way a phone's can: minutes off, reset
to 1970 by a flat battery, set by hand to 2099, moved back by a courier who
wants a wait to look longer. The server knows two things no device can change:
when a batch arrived, and an order of events (the device numbers its ops as the
courier acts; its enrollment, its last sync with a good clock, the entity's
creation all came before). An op's effective time is its device time corrected
by the batch's measured skew, held between those bounds:

    effective = clamp(device_time - skew, floor, received_at)

where floor is the latest of the device's enrollment, its last trusted sync
(for ops with a higher seq than it had assigned then), its previous op and the
entity's birth. An op whose time had to be moved further than the tolerance,
or whose batch clock is off by more than it, or whose device time is outside
2000..2099, or which lies after the trusted sync before which the device said it had
numbered it (its last_seq then: a claim that cannot switch the floor off), is `suspect`: kept and applied at its effective time, and marked
so every rule that gives credit by time sends the decision to review.

Pure functions of what push.py reads under the device lock: no queries here.
"""
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from schemas.limits import EARLIEST_TIME, LATEST_TIME

_EARLIEST_AWARE = datetime.min.replace(tzinfo=timezone.utc)
_LATEST_AWARE = datetime.max.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class BatchClock:
    """What the server measured of the device's clock when the batch arrived."""

    received_at: datetime
    skew_s: int | None  # device_now - received_at, in whole seconds; None without device_now
    tolerance: timedelta

    @property
    def trusted(self) -> bool:
        """The device's clock was measured, and within the tolerance of the server's."""
        return self.skew_s is not None and abs(self.skew_s) <= self.tolerance.total_seconds()


@dataclass(frozen=True)
class OpTime:
    """An op's effective time, whether it is suspect, and the floor of the device's next op."""

    effective: datetime
    suspect: bool
    # What the device's next op cannot precede: this op's effective time, or (its clock suspect, so its
    # time a guess) the floor it was held to.
    next_floor: datetime


def _moved(at: datetime, seconds: int) -> datetime:
    """at minus seconds; a time beyond the calendar's end stays at its end (a clock decades off, corrected)."""
    try:
        return at - timedelta(seconds=seconds)
    except OverflowError:
        return _LATEST_AWARE if seconds < 0 else _EARLIEST_AWARE


def op_time(reported: datetime, clock: BatchClock, floor: datetime, ceiling: datetime | None = None) -> OpTime:
    """The effective time of an op the device dated `reported`, sent in a batch measured as `clock`.

    ceiling (ceiling_of): the trusted sync before which the device said it had
    numbered this op; a time after it (beyond the tolerance) is suspect: the
    claim or the clock is wrong, and a claim of seqs never made (a huge
    last_seq, which switches the floor off) must not buy unflagged times.

    The corrected time is taken unless it cannot be and the reported one can
    (the clock changed between the op and the push: ops queued under a good
    clock, sent after it reset to 1970). Either is then held between the floor
    and the receipt.
    """
    received, tolerance = clock.received_at, clock.tolerance
    floor = min(floor, received)

    def possible(at: datetime) -> bool:
        return floor - tolerance <= at <= received + tolerance

    candidate = _moved(reported, clock.skew_s) if clock.skew_s is not None else reported
    if not possible(candidate) and possible(reported):
        candidate = reported
    effective = min(max(candidate, floor), received)
    suspect = (not possible(candidate) or (clock.skew_s is not None and not clock.trusted)
               or not EARLIEST_TIME <= reported < LATEST_TIME
               or (ceiling is not None and candidate > ceiling + tolerance))
    return OpTime(effective, suspect, floor if suspect else effective)


def floor_of(*, enrolled_at: datetime, previous: datetime | None, anchor_at: datetime | None,
             anchor_seq: int | None, seq: int, born: datetime | None) -> datetime:
    """The earliest an op can have happened: after the device's enrollment, its previous op, its last trusted
    sync if the device assigned this seq after it, and the birth of the entity it is about."""
    bounds = [enrolled_at, previous, born, anchor_at if anchor_seq is not None and seq > anchor_seq else None]
    return max(b for b in bounds if b is not None)


def ceiling_of(*, anchor_at: datetime | None, anchor_seq: int | None, seq: int) -> datetime | None:
    """The latest an op can have happened by the device's own word: its last trusted sync said it had numbered
    ops up to anchor_seq, so one of those happened before that sync (None: no such claim covers this seq)."""
    return anchor_at if anchor_at is not None and anchor_seq is not None and seq <= anchor_seq else None
