"""sync.timing, the one decision of when an op happened: corrected by the batch's skew, held between its floor and
its receipt, suspect when it had to be moved beyond the tolerance or its batch's clock is off."""
from datetime import datetime, timedelta, timezone

import pytest

from sync.timing import BatchClock, floor_of, op_time

RECEIVED = datetime(2026, 11, 26, 4, 0, tzinfo=timezone.utc)  # 12:00 in Shanghai
FLOOR = RECEIVED - timedelta(hours=6)
TOLERANCE = timedelta(minutes=5)
H, M = timedelta(hours=1), timedelta(minutes=1)


def _clock(skew_s: int | None = 0) -> BatchClock:
    return BatchClock(RECEIVED, skew_s, TOLERANCE)


@pytest.mark.parametrize("reported, skew, effective, suspect", [
    # A courier offline all morning, clock right: the time stands, not suspect.
    (RECEIVED - 5 * H, 0, RECEIVED - 5 * H, False),
    # Without device_now nothing is corrected, and the bounds still hold.
    (RECEIVED - 5 * H, None, RECEIVED - 5 * H, False),
    # A clock 20 minutes fast, consistently: corrected, and suspect (its batch's clock is off).
    (RECEIVED - 2 * H + 20 * M, 20 * 60, RECEIVED - 2 * H, True),
    # Two minutes ahead of the receipt, within the tolerance: the receipt, not suspect.
    (RECEIVED + 2 * M, 0, RECEIVED, False),
    # 2099 under a true clock: the receipt, suspect.
    (datetime(2099, 6, 1, 2, 0, tzinfo=timezone.utc), 0, RECEIVED, True),
    # Before the floor by less than the tolerance (a small clock step): held to it, not suspect.
    (FLOOR - 3 * M, 0, FLOOR, False),
    # Before the floor by more: held to it, suspect.
    (FLOOR - 20 * M, 0, FLOOR, True),
    # 1970 under a true clock (queued while the clock was reset, sent once it was fixed): the floor, suspect.
    (datetime(1970, 1, 1, 0, 3, tzinfo=timezone.utc), 0, FLOOR, True),
])
def test_effective_time(reported, skew, effective, suspect):
    """Each case of the formula, with its flag."""
    timed = op_time(reported, _clock(skew), FLOOR)
    assert (timed.effective, timed.suspect) == (effective, suspect)
    assert timed.next_floor == (FLOOR if suspect else effective)


def test_a_clock_reset_to_1970_is_corrected_by_its_skew():
    """Ops dated 00:05 and 00:25 on 1 January 1970, sent when the device said 00:45: 40 and 20 minutes before the
    receipt; suspect, since a clock off by 56 years says nothing certain."""
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    clock = _clock(round((epoch + 45 * M - RECEIVED).total_seconds()))
    times = [op_time(epoch + minutes * M, clock, FLOOR) for minutes in (5, 25)]
    assert [(t.effective, t.suspect) for t in times] == [(RECEIVED - 40 * M, True), (RECEIVED - 20 * M, True)]


def test_ops_queued_before_the_clock_reset_keep_their_time():
    """Ops made under a good clock, sent after it reset to 1970: corrected they would lie 56 years ahead; the time
    the device gave them is possible, so it is kept (suspect)."""
    clock = _clock(round((datetime(1970, 1, 1, tzinfo=timezone.utc) - RECEIVED).total_seconds()))
    timed = op_time(RECEIVED - 2 * H, clock, FLOOR)
    assert (timed.effective, timed.suspect) == (RECEIVED - 2 * H, True)


@pytest.mark.parametrize("reported", [datetime.min.replace(tzinfo=timezone.utc),
                                      datetime.max.replace(tzinfo=timezone.utc)])
@pytest.mark.parametrize("skew", [-(2**31 - 1), 0, 2**31 - 1])
def test_the_calendars_ends_corrected_by_the_largest_skews(reported, skew):
    """No overflow: the time is held between the floor and the receipt whatever the clock said."""
    timed = op_time(reported, _clock(skew), FLOOR)
    assert FLOOR <= timed.effective <= RECEIVED and timed.suspect


def test_floor_is_the_latest_of_what_came_before():
    """Enrollment, the previous op, the entity's birth; the last trusted sync only for ops numbered after it."""
    enrolled = RECEIVED - 9 * H
    assert floor_of(enrolled_at=enrolled, previous=None, anchor_at=None, anchor_seq=None, seq=1, born=None) == enrolled
    assert floor_of(enrolled_at=enrolled, previous=RECEIVED - 3 * H, anchor_at=RECEIVED - 4 * H, anchor_seq=10,
                    seq=11, born=RECEIVED - 8 * H) == RECEIVED - 3 * H
    assert floor_of(enrolled_at=enrolled, previous=RECEIVED - 3 * H, anchor_at=RECEIVED - H, anchor_seq=10,
                    seq=11, born=RECEIVED - 2 * H) == RECEIVED - H
    # Numbered before that sync (the rest of a long queue, sent in a later batch): the sync says nothing of it.
    assert floor_of(enrolled_at=enrolled, previous=RECEIVED - 3 * H, anchor_at=RECEIVED - H, anchor_seq=10,
                    seq=10, born=RECEIVED - 2 * H) == RECEIVED - 2 * H


def test_a_floor_after_the_receipt_gives_way_to_the_receipt():
    """An entity made while the batch waited for its lock: the op is no later than it arrived."""
    timed = op_time(RECEIVED - H, _clock(), RECEIVED + M)
    assert timed.effective == RECEIVED
