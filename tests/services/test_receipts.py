"""Sealed receipts: issuing, idempotency, numbering under concurrency, keys and rotation, the canonical form."""
import base64
import contextlib
import hashlib
import json
import os
import re
import stat
import threading
from datetime import date, datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
import sqlalchemy
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from server.clock import local_date, utcnow
from server.errors import NotFound
from server.extensions import db
from server.models import Receipt, ReceiptKey, Task
from server.services import receipts

NUMBER = re.compile(r"FO-(\d{8})-(\d{5})")


def evidence(**extra) -> dict:
    """A delivery's evidence as the handover hands it over."""
    return {"completed_at": "2026-11-24T03:10:00Z",
            "inspection": {"items": [{"parcel_no": "P1-1", "counted": 2, "condition": "ok"}],
                           "customer_accepted": True},
            "fees": [{"code": "delivery", "amount": 1200}], "cod_amount": 4990, "amount": 6190,
            "signature": "ab" * 32, "photos": [], **extra}


def issue(for_task: str, kind: str = "delivery", **extra) -> Receipt:
    """Issue and commit a receipt."""
    receipt = receipts.issue(task_id=for_task, kind=kind, evidence=evidence(**extra))
    db.session.commit()
    return receipt


@pytest.fixture
def task(make):
    """A task with a Chinese recipient, phone and full address."""
    return make.task(courier=make.courier(), recipient={"name": "王小明", "phone": "13912345678",
                                                        "address": "上海市黄浦区人民路123号5栋301室"})


@pytest.fixture
def key_file(app, tmp_path):
    """A fresh instance folder for the generated key (no FIELDOPS_RECEIPT_KEY)."""
    app.config["RECEIPT_KEY"] = None
    app.config["RECEIPT_KEY_FILE"] = str(tmp_path / "instance" / "receipt-key.pem")
    return app.config["RECEIPT_KEY_FILE"]


def public_raw(key: Ed25519PrivateKey) -> bytes:
    """A key's 32 raw public bytes."""
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def test_issue_seals_the_canonical_json_of_number_time_kind_and_evidence(app, task, key_file):
    """The stored payload is canonical, names its key, and carries the task's facts with the recipient masked."""
    receipt = issue(task["id"])
    sealed = json.loads(receipt.payload)
    assert set(sealed) == {"format", "number", "issued_at", "kind", "key_id", "evidence"}
    assert sealed["format"] == "fieldops.receipt.v1" and sealed["kind"] == "delivery"
    assert sealed["number"] == receipt.number and sealed["key_id"] == receipt.key_id
    assert sealed["issued_at"] == receipt.issued_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert receipts.canonical_json(sealed) == receipt.payload.encode()
    assert " " not in receipt.payload and receipt.payload.index('"evidence"') < receipt.payload.index('"format"')
    assert sealed["evidence"]["task_id"] == task["id"] and sealed["evidence"]["waybill_no"] == task["waybill_no"]
    assert sealed["evidence"]["recipient"] == "王**" and sealed["evidence"]["amount"] == 6190
    for secret in ("小明", "13912345678", "人民路", "301室"):  # "301" alone may be in a random id
        assert secret not in receipt.payload
    day, sequence = NUMBER.fullmatch(receipt.number).groups()
    assert day == f"{local_date(receipt.issued_at):%Y%m%d}" and sequence == "00001"
    token = receipts.page_token(receipt)
    assert re.fullmatch(r"for_[A-Za-z0-9_-]{43}", token) and receipt.number not in token
    assert token not in receipt.token_sealed and receipt.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert receipts.verifies(receipt)


def test_the_caller_cannot_put_another_recipient_or_task_in_the_evidence(app, task, key_file):
    """The task's own facts overwrite whatever the evidence said about them."""
    receipt = issue(task["id"], recipient="王小明 13912345678", task_id="t-other", waybill_no="X")
    sealed = json.loads(receipt.payload)["evidence"]
    assert (sealed["recipient"], sealed["task_id"], sealed["waybill_no"]) == ("王**", task["id"], task["waybill_no"])


def test_latin_names_are_masked_too(app, make, key_file):
    """A Latin name keeps only its last word behind the stars."""
    task = make.task(recipient={"name": "Anna Maria Smith", "phone": "13912345678", "address": "88 Renmin Rd"})
    assert json.loads(issue(task["id"]).payload)["evidence"]["recipient"] == "** Smith"


def test_a_second_issue_returns_the_first_receipt(app, task, key_file):
    """Same task and kind: the same receipt, number and seal; no number is used up; another kind gets the next."""
    first = issue(task["id"])
    again = issue(task["id"], amount=1)  # different evidence: still the first receipt, unchanged
    assert (again.id, again.number, again.signature, again.payload) == \
        (first.id, first.number, first.signature, first.payload)
    assert db.session.scalar(select(func.count()).select_from(Receipt)) == 1
    refusal = issue(task["id"], kind="refusal")
    assert refusal.id != first.id and refusal.number.endswith("-00002")


def test_a_second_issue_in_the_same_unflushed_batch_returns_the_pending_receipt(app, task, key_file):
    """Inside push's no_autoflush batch the query cannot see it: the pending receipt is found in the session."""
    with db.session.no_autoflush:
        first = receipts.issue(task_id=task["id"], kind="delivery", evidence=evidence())
        again = receipts.issue(task_id=task["id"], kind="delivery", evidence=evidence())
    db.session.commit()
    assert again is first
    assert db.session.scalar(select(func.count()).select_from(Receipt)) == 1


def test_issue_inside_a_batch_keeps_the_batchs_unflushed_changes_to_the_task(app, task, key_file):
    """The handover changes the task in memory, then issues: the task lock does not reload those changes away."""
    with db.session.no_autoflush:
        row = db.session.get(Task, task["id"])
        row.status, row.finished_at = "delivered", utcnow()
        receipts.issue(task_id=task["id"], kind="delivery", evidence=evidence())
        assert row.status == "delivered"
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Task, task["id"]).status == "delivered"


def test_the_unique_key_refuses_a_second_receipt_of_a_kind(app, task, key_file):
    """Beneath the service, the database itself keeps one receipt per (task, kind)."""
    first = issue(task["id"])
    db.session.add(Receipt(number="FO-X", token_hash="x" * 64, token_sealed="x", task_id=task["id"], kind="delivery",
                           issued_at=utcnow(), key_id=first.key_id, payload="{}", signature="x"))
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


def test_unknown_task_and_kind(app, key_file):
    """No such task is the usual 404; a kind outside the vocabulary is a programming error."""
    with pytest.raises(NotFound):
        receipts.issue(task_id="t-nope", kind="delivery", evidence={})
    with pytest.raises(ValueError):
        receipts.issue(task_id="t-nope", kind="gift", evidence={})


# --- the canonical form ---------------------------------------------------------------------------

def test_canonical_json_is_exactly_as_documented():
    """Sorted keys, no whitespace, raw UTF-8, JSON's short escapes, lowercase \\u00xx for other controls."""
    value = {"b": 1, "a": "王\n\"\\\t\x01/", "c": [True, None, -5, {"z": 0, "Z": ""}]}
    assert receipts.canonical_json(value) == \
        '{"a":"王\\n\\"\\\\\\t\\u0001/","b":1,"c":[true,null,-5,{"Z":"","z":0}]}'.encode()
    moment = datetime(2026, 11, 24, 11, 10, 5, 999, tzinfo=timezone(timedelta(hours=8)))
    assert receipts.canonical_json({"at": moment}) == b'{"at":"2026-11-24T03:10:05Z"}'


@pytest.mark.parametrize("bad", [{"amount": 12.5}, {"amount": 2 ** 53}, {"é": 1}, {1: "x"},
                                 {"at": datetime(2026, 1, 1)}, {"x": {1, 2}}, {"x": float("nan")}])
def test_canonical_json_refuses_what_has_no_single_spelling(bad):
    """Floats (money is integer fen), unsafe integers, non-ASCII or non-text keys, naive times, sets."""
    with pytest.raises((TypeError, ValueError)):
        receipts.canonical_json(bad)


def test_issue_refuses_float_money_and_writes_nothing(app, task, key_file):
    """A float in the evidence is refused before anything is added or numbered."""
    with pytest.raises(TypeError):
        receipts.issue(task_id=task["id"], kind="delivery", evidence=evidence(amount=61.9))
    db.session.rollback()
    assert issue(task["id"]).number.endswith("-00001")


# --- keys -----------------------------------------------------------------------------------------

def test_the_key_is_generated_on_first_use_into_the_instance_folder_0600(app, task, key_file):
    """No configured key: one is made once, readable by its owner only, and published with its id."""
    assert not os.path.exists(key_file)
    receipt = issue(task["id"])
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    with open(key_file, "rb") as pem:
        key = serialization.load_pem_private_key(pem.read(), password=None)
    assert receipt.key_id == hashlib.sha256(public_raw(key)).hexdigest()[:16]
    row = db.session.get(ReceiptKey, receipt.key_id)
    assert base64.urlsafe_b64decode(row.public_key + "=") == public_raw(key) and row.retired_at is None
    assert not [name for name in os.listdir(os.path.dirname(key_file)) if name != "receipt-key.pem"]
    assert receipts.signing_key().private_bytes_raw() == key.private_bytes_raw()  # the same key next time


@pytest.mark.parametrize("form", ["pem", "base64", "base64url"])
def test_the_key_from_configuration(app, task, form):
    """FIELDOPS_RECEIPT_KEY as PEM or base64 of the raw 32 bytes; receipts name its id."""
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes_raw()
    app.config["RECEIPT_KEY"] = {
        "pem": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode(),
        "base64": base64.b64encode(raw).decode(),
        "base64url": base64.urlsafe_b64encode(raw).rstrip(b"=").decode()}[form]
    receipt = issue(task["id"])
    assert receipt.key_id == hashlib.sha256(public_raw(key)).hexdigest()[:16]
    key.public_key().verify(base64.urlsafe_b64decode(receipt.signature + "=="), receipt.payload.encode())


@pytest.mark.parametrize("value", ["not a key", base64.b64encode(b"short").decode(),
                                   "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"])
def test_a_bad_configured_key_is_refused(app, value):
    """Neither PEM nor 32 raw bytes: a clear error, never a receipt sealed with something else."""
    app.config["RECEIPT_KEY"] = value
    with pytest.raises(ValueError):
        receipts.signing_key()


def test_rotation_keeps_old_receipts_verifiable(app, make, task, key_file):
    """After rotate: new receipts carry the new key, old ones still verify, both keys are published."""
    old = issue(task["id"])
    result = app.test_cli_runner().invoke(args=["receipt-key", "rotate"])
    assert result.exit_code == 0, result.output
    new = issue(make.task()["id"])
    assert new.key_id != old.key_id and new.key_id in result.output
    assert receipts.verifies(old) and receipts.verifies(new)
    keys = {k["kid"]: k for k in receipts.key_set()["keys"]}
    assert keys[old.key_id]["status"] == "retired" and keys[old.key_id]["valid_until"] is not None
    assert keys[new.key_id]["status"] == "active" and keys[new.key_id]["valid_until"] is None
    listed = app.test_cli_runner().invoke(args=["receipt-key", "list"]).output
    assert f"{old.key_id}\tretired" in listed and f"{new.key_id}\tactive" in listed


def test_rotate_refuses_when_the_key_comes_from_configuration(app):
    """The configured key is the operator's to change: the command says how, and changes nothing."""
    app.config["RECEIPT_KEY"] = base64.b64encode(Ed25519PrivateKey.generate().private_bytes_raw()).decode()
    result = app.test_cli_runner().invoke(args=["receipt-key", "rotate"])
    assert result.exit_code != 0 and "FIELDOPS_RECEIPT_KEY" in result.output
    assert receipts.key_set() == {"keys": []}


def test_a_new_configured_key_retires_the_old_one_when_it_first_seals(app, make, task):
    """Rotation by configuration: the new key is published (and the old retired) on its first receipt."""
    app.config["RECEIPT_KEY"] = base64.b64encode(Ed25519PrivateKey.generate().private_bytes_raw()).decode()
    old = issue(task["id"])
    app.config["RECEIPT_KEY"] = base64.b64encode(Ed25519PrivateKey.generate().private_bytes_raw()).decode()
    new = issue(make.task()["id"])
    status = {k["kid"]: k["status"] for k in receipts.key_set()["keys"]}
    assert status == {old.key_id: "retired", new.key_id: "active"}
    assert receipts.verifies(old)


def test_a_tampered_stored_receipt_no_longer_verifies(app, task, key_file):
    """One fen more in the stored payload, or a payload re-spaced: the seal fails."""
    receipt = issue(task["id"])
    original = receipt.payload
    receipt.payload = original.replace('"amount":6190', '"amount":6191')
    assert not receipts.verifies(receipt)
    receipt.payload = json.dumps(json.loads(original), ensure_ascii=False, sort_keys=True)
    assert not receipts.verifies(receipt)
    receipt.payload = original
    assert receipts.verifies(receipt)


# --- numbering under concurrency ------------------------------------------------------------------

def _issuer(app, task_id: str, results: dict, name: str, ready=None, go=None, *, commit: bool = True) -> None:
    """Issue in a session of its own; with events, pause before ending the transaction until told to go on."""
    with app.app_context():
        try:
            receipt = receipts.issue(task_id=task_id, kind="delivery", evidence=evidence())
            db.session.flush()  # numbered at the flush that inserts it
            results[name] = receipt.number
            if ready is not None:
                ready.set()
                go.wait(20)
            db.session.commit() if commit else db.session.rollback()
        except Exception as exc:  # reported to the test thread
            results[name] = exc
        finally:
            if ready is not None:
                ready.set()


def _interleave(app, first_task: str, second_task: str, *, first_commits: bool = True) -> dict:
    """A issues and pauses before its COMMIT (or ROLLBACK); B issues meanwhile; then A ends."""
    results: dict = {}
    ready, go = threading.Event(), threading.Event()
    a = threading.Thread(target=_issuer, args=(app, first_task, results, "a", ready, go),
                         kwargs={"commit": first_commits})
    try:
        a.start()
        assert ready.wait(20)
        b = threading.Thread(target=_issuer, args=(app, second_task, results, "b"))
        b.start()
        b.join(1.0)
        results["b_waited"] = b.is_alive()
        go.set()
        a.join(20)
        b.join(20)
    finally:
        go.set()
    return results


def _first_receipt(make) -> None:
    """One receipt committed, so the key is published and the day's counter exists."""
    receipts.issue(task_id=make.task()["id"], kind="delivery", evidence=evidence())
    db.session.commit()


def test_two_transactions_never_get_one_number(app, make, key_file, engine_name):
    """B issues while A holds its number uncommitted: B takes the next number. On PostgreSQL B does
    not queue behind A (the counter is locked for one statement); SQLite runs one writer at a time."""
    _first_receipt(make)
    results = _interleave(app, make.task()["id"], make.task()["id"])
    assert results["b_waited"] == (engine_name == "sqlite"), results
    assert [results["a"][-5:], results["b"][-5:]] == ["00002", "00003"], results
    assert len(set(db.session.scalars(select(Receipt.number)))) == 3


def test_a_rolled_back_issue(app, make, key_file, engine_name):
    """A takes a number and rolls back while B issues. SQLite: B waited and gets A's number back,
    no gap. PostgreSQL: B did not wait and takes the next one; A's number stays unused (a gap)."""
    _first_receipt(make)
    t1, t2 = make.task()["id"], make.task()["id"]
    results = _interleave(app, t1, t2, first_commits=False)
    assert results["a"].endswith("-00002"), results
    expected = "-00002" if engine_name == "sqlite" else "-00003"
    assert results["b_waited"] == (engine_name == "sqlite") and results["b"].endswith(expected), results
    assert db.session.scalar(select(Receipt.task_id).where(Receipt.number == results["b"])) == t2
    assert db.session.scalar(select(func.count()).select_from(Receipt).where(Receipt.task_id == t1)) == 0


def test_two_transactions_issuing_for_one_task_share_one_receipt(app, make, key_file):
    """Concurrent issues for the same task and kind: the second waits for the task and returns the first's."""
    _first_receipt(make)
    task_id = make.task()["id"]
    results = _interleave(app, task_id, task_id)
    assert not isinstance(results["b"], Exception), results
    assert results["a"] == results["b"] and results["b_waited"]
    assert db.session.scalar(select(func.count()).select_from(Receipt).where(Receipt.task_id == task_id)) == 1


def _take_concurrently(app, threads: int, calls: int) -> list[int]:
    """Threads each take `calls` numbers of one day, one at a time, all starting together."""
    day, taken, barrier = date(2026, 11, 24), [], threading.Barrier(threads)

    def work():
        with app.app_context():
            barrier.wait(20)
            for _ in range(calls):
                taken.extend(receipts._numbers(db.session, day, 1))
                db.session.commit()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    return taken


def test_concurrent_issuers_never_share_a_number(app, engine_name):
    """Four sessions taking numbers at once: every number once, none lost (nothing rolled back)."""
    taken = _take_concurrently(app, threads=4, calls=25)
    assert sorted(taken) == list(range(1, 101))


def test_the_numbering_test_catches_a_read_then_write_counter(app, engine_name, monkeypatch):
    """Mutation check: number by reading the counter, then writing it, and two sessions share a number."""
    if engine_name != "postgresql":
        pytest.skip("SQLite serialises writers by itself; the upsert's atomicity matters on PostgreSQL")
    from server.models import ReceiptCounter
    both_read = threading.Barrier(2)

    def read_then_write(connection, day, count):
        last = connection.execute(select(ReceiptCounter.last).where(ReceiptCounter.day == day)).scalar_one_or_none()
        with contextlib.suppress(threading.BrokenBarrierError):
            both_read.wait(2)  # the two sessions read before either writes, as a busy depot would
        if last is None:
            connection.execute(insert(ReceiptCounter).values(day=day, last=count))
            return range(1, count + 1)
        connection.execute(update(ReceiptCounter).where(ReceiptCounter.day == day).values(last=last + count))
        return range(last + 1, last + count + 1)

    with app.app_context():
        receipts._numbers(db.session, date(2026, 11, 24), 1)  # the day's counter exists
        db.session.commit()
    # Patched only now: the setup's call above, alone at the barrier, would break it for the two below.
    monkeypatch.setattr(receipts, "_take_numbers", read_then_write)
    taken = _take_concurrently(app, threads=2, calls=1)
    assert len(taken) == 2 and len(set(taken)) == 1, taken  # both took the same number


def test_a_batch_is_numbered_at_its_flush_in_one_counter_statement(app, make, key_file):
    """Receipts issued in one transaction get consecutive numbers at the flush, from one upsert;
    whoever asked for the number (the handover, the event) gets it then; the seal carries it."""
    _first_receipt(make)
    task_ids = [make.task()["id"] for _ in range(3)]
    statements: list[str] = []
    listener = lambda _c, _cur, statement, *_a: statements.append(statement)  # noqa: E731 - a probe
    sqlalchemy.event.listen(db.engine, "before_cursor_execute", listener)
    try:
        with db.session.no_autoflush:
            issued = [receipts.issue(task_id=task_id, kind="delivery", evidence=evidence()) for task_id in task_ids]
            wanted = {}
            receipts.number_into(issued[1], wanted, "receipt_number")
            assert [r.number for r in issued] == [None] * 3 and wanted == {"receipt_number": None}
        db.session.commit()
    finally:
        sqlalchemy.event.remove(db.engine, "before_cursor_execute", listener)
    assert [r.number[-5:] for r in issued] == ["00002", "00003", "00004"]
    assert wanted == {"receipt_number": issued[1].number}
    assert sum("receipt_counters" in s for s in statements) == 1
    assert all(json.loads(r.payload)["number"] == r.number and receipts.verifies(r) for r in issued)


def test_a_receipt_issued_in_a_rolled_back_savepoint_takes_no_number(app, make, key_file):
    """The savepoint's receipt is gone before the flush: the one issued after it takes the next number."""
    _first_receipt(make)
    dropped, kept = make.task()["id"], make.task()["id"]
    savepoint = db.session.begin_nested()
    with db.session.no_autoflush:
        receipts.issue(task_id=dropped, kind="delivery", evidence=evidence())
    savepoint.rollback()
    kept = receipts.issue(task_id=kept, kind="delivery", evidence=evidence())
    db.session.commit()
    assert kept.number.endswith("-00002")
    assert db.session.scalar(select(func.count()).select_from(Receipt)) == 2
