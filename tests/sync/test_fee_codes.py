"""Published fee codes on the handheld (issue 25): every device holds the active ones offline (pull entity
`fee_code`), and a change to one (renamed, withdrawn, published again) reaches the devices through the feed."""

from server.extensions import db
from server.models import FeeCode


def _held(store: dict) -> dict[str, dict]:
    return {key[1]: change for key, change in store.items() if key[0] == "fee_code"}


def test_a_first_pull_carries_every_published_fee_code_and_no_withdrawn_one(device, fee_codes):
    """The active codes with their names (what the courier chooses from at a pickup); inactive ones never."""
    assert any(active for _, active in fee_codes.values())
    first = next(code for code, (_, active) in sorted(fee_codes.items()) if active)
    db.session.get(FeeCode, first).active = False
    db.session.commit()
    store, _, last = device.pull_all()
    held = _held(store)
    expected = {code: name for code, (name, active) in fee_codes.items() if active and code != first}
    assert {code: change["data"]["name"] for code, change in held.items()} == expected
    assert all(change["data"]["code"] == change["id"] == code for code, change in held.items())
    assert all(change["version"] == change["data"]["version"] >= 1 for change in held.values())
    assert last["scope"]["count"] == len(store)  # the drift check counts them too


def test_a_fee_code_change_reaches_the_device(device, fee_codes):
    """Renamed: a new version; withdrawn: a tombstone; a new code published: it arrives; the scope stays exact."""
    store, cursor, _ = device.pull_all()
    code = sorted(_held(store))[0]
    version = store[("fee_code", code)]["version"]
    fee = db.session.get(FeeCode, code)
    fee.name = fee.name + "（新）"
    db.session.commit()
    page = device.pull(cursor)
    assert [(c["entity"], c["id"], c["deleted"], c["version"], c["data"]["name"]) for c in page["changes"]] == [
        ("fee_code", code, False, version + 1, fee.name)]
    db.session.get(FeeCode, code).active = False
    db.session.add(FeeCode(code="stairs_test", name="楼层费（测试）", active=True))
    db.session.commit()
    store, cursor, last = device.pull_all(page["cursor"])
    changes = {(c["id"], c["deleted"]) for c in device.pull(page["cursor"])["changes"]}
    assert changes == {(code, True), ("stairs_test", False)}
    store, _, last = device.pull_all()
    assert code not in _held(store) and _held(store)["stairs_test"]["data"]["name"] == "楼层费（测试）"
    assert last["scope"]["count"] == len(store)


def test_another_couriers_device_holds_the_same_list(device, make, client, fee_codes):
    """Fee codes are no courier's: every device's scope holds the published list."""
    from tests.sync.conftest import Device
    other = Device(client, make.device(make.courier()))
    mine, _, _ = device.pull_all()
    theirs, _, _ = other.pull_all()
    assert set(_held(mine)) == set(_held(theirs)) == {c for c, (_, active) in fee_codes.items() if active}
