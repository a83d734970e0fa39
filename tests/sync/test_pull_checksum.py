"""The incremental pull's scope checksum, read as plain rows and sorted once, equals the full listing's."""
from flask import current_app

from server.clock import local_day_start, utcnow
from sync import pull


def test_checksum_from_scope_rows_equals_the_listing_order_one(device, make, courier):
    """Same scope, same answer: the rows in no order and the listing's sorted tuples."""
    for _ in range(4):
        make.task(courier=courier)
    make.task(courier=make.courier())
    registry = current_app.extensions["fieldops_sync"]
    day_start = local_day_start(utcnow())
    listing = pull._scope(registry, courier["id"], day_start)
    rows = pull._scope_rows(registry, courier["id"], day_start)
    assert sorted(rows) == sorted((s[1], s[2], s[3]) for s in listing)
    assert pull.checksum(rows) == pull.checksum([(s[1], s[2], s[3]) for s in listing])


def test_incremental_and_full_pull_report_the_same_scope(device, make, courier):
    """After a change, the incremental pull's checksum is the one a fresh full listing reports."""
    make.task(courier=courier)
    _, cursor, _ = device.pull_all()
    make.task(courier=courier)
    incremental = device.pull(cursor)
    _, _, full = device.pull_all()
    assert incremental["scope"] == full["scope"] and incremental["scope"]["count"] == full["scope"]["count"]
