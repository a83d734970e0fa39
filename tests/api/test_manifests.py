"""Upstream manifests: row by row, bad rows quarantined with reasons naming fields, every row counted, idempotent."""
import io
import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, update

from server.extensions import db
from server.models import Change, ManifestQuarantine, Task, TaskEvent

UPLOAD = "/api/v1/integrations/manifests"
QUARANTINE = "/api/v1/dispatch/manifests/quarantine"
HEADER = ("waybill_no,kind,recipient_name,recipient_phone,address,lat,lon,window_start,window_end,cod_amount,fees,"
          "parcel_no,parcel_description,parcel_count")


def _window() -> tuple[str, str]:
    """A window an hour from now, two hours long."""
    start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=1)
    return start.isoformat(), (start + timedelta(hours=2)).isoformat()


def csv_line(waybill: str, *, phone="13912345678", parcel="P1", fees="delivery:1200", extra="", name="王小明",
             kind="delivery") -> str:
    """One CSV line of the manifest (one parcel)."""
    start, end = _window()
    return (f"{waybill},{kind},{name},{phone},1 Renmin Rd,31.23,121.47,{start},{end},4990,{fees},{parcel},box,1"
            + extra)


def upload(client, make, body, *, role="dispatcher", csv=False, expect=200) -> dict:
    """POST a manifest (JSON rows, or CSV text) and return the answer."""
    headers = make.headers(role)
    if csv:
        response = client.post(UPLOAD, data=body.encode(), content_type="text/csv", headers=headers)
    else:
        response = client.post(UPLOAD, data=json.dumps(body), content_type="application/json", headers=headers)
    assert response.status_code == expect, response.json
    return response.json


def reasons(report: dict) -> dict[int, set[tuple[str, str]]]:
    """{row: {(field, code)}} of the quarantined rows."""
    return {r["row"]: {(x["field"], x["code"]) for x in r["reasons"]} for r in report["rows"] if r["reasons"]}


def counts_add_up(report: dict) -> None:
    """Every row is counted once."""
    c = report["counts"]
    assert c["rows"] == len(report["rows"]) == c["created"] + c["updated"] + c["unchanged"] + c["quarantined"]


def feed_and_versions() -> tuple[int, dict]:
    """How many feed changes there are, and every task's version."""
    db.session.expire_all()
    return (db.session.scalar(select(func.count()).select_from(Change)),
            dict(db.session.execute(select(Task.waybill_no, Task.version)).all()))


def test_csv_good_and_bad_rows(client, make):
    """Good waybills are created whatever the bad ones hold; each bad one is quarantined naming its field."""
    text = "\n".join([
        HEADER,
        csv_line("MF-GOOD1", parcel="P1"), csv_line("MF-GOOD1", parcel="P2"),  # two parcels, one task
        csv_line("MF-BADPHONE", phone="call-me"),
        csv_line("MF-EXTRA", extra=",surplus"),
        csv_line("MF-RUSH", fees="rush:500"),
        csv_line("MF-TWICEFEE", fees="delivery:100;delivery:200"),
        csv_line("MF-PARCEL", parcel="P9"), csv_line("MF-PARCEL", parcel="P9"),
        csv_line("MF-GOOD2"),
    ]) + "\n"
    report = upload(client, make, text, csv=True)
    counts_add_up(report)
    assert report["counts"] == {"rows": 7, "created": 2, "updated": 0, "unchanged": 0, "quarantined": 5}
    assert reasons(report) == {
        4: {("recipient_phone", "invalid")}, 5: {("row", "malformed_row")}, 6: {("fees.0.code", "fee_not_published")},
        7: {("fees", "fee_repeated")}, 8: {("parcels", "parcel_repeated")}}
    created = {r["waybill_no"]: r["task_id"] for r in report["rows"] if r["outcome"] == "created"}
    assert set(created) == {"MF-GOOD1", "MF-GOOD2"}
    task = client.get(f"/api/v1/dispatch/tasks/{created['MF-GOOD1']}", headers=make.headers("dispatcher")).json
    assert [p["parcel_no"] for p in task["parcels"]] == ["P1", "P2"]
    # The quarantine keeps the file, its hash, the row as received and the reasons.
    db.session.expire_all()
    kept = {q.row_number: q for q in db.session.scalars(select(ManifestQuarantine))}
    assert set(kept) == {4, 5, 6, 7, 8}
    assert kept[5].file_sha256 == report["file_sha256"] and kept[5].file_name == "upload.csv"
    assert kept[5].raw == [{"line": 5, "cells": kept[5].raw[0]["cells"], "extra": ["surplus"]}]
    assert kept[8].waybill_no == "MF-PARCEL" and [line["line"] for line in kept[8].raw] == [8, 9]
    assert db.session.scalar(select(func.count()).select_from(Task)) == 2


def test_json_good_and_bad_rows(client, make):
    """JSON rows: missing and unknown fields, a row that is no object, a waybill twice; the good ones stand."""
    good = make.task_spec(waybill_no="MJ-GOOD")
    missing = make.task_spec(waybill_no="MJ-NOWINDOW")
    del missing["window"]
    unknown = {**make.task_spec(waybill_no="MJ-UNKNOWN"), "priority": "high"}
    report = upload(client, make, [good, missing, unknown, 42, {**good, "cod_amount": 1}])
    counts_add_up(report)
    assert report["counts"] == {"rows": 5, "created": 1, "updated": 0, "unchanged": 0, "quarantined": 4}
    assert reasons(report) == {2: {("window", "required")}, 3: {("priority", "unknown_field")},
                               4: {("row", "malformed_row")}, 5: {("waybill_no", "duplicate_in_file")}}
    assert [r["outcome"] for r in report["rows"]] == ["created"] + ["quarantined"] * 4


def test_reimport_changes_nothing(client, make):
    """The same file again: good rows unchanged, bad rows quarantined once, no version, no feed change, no history."""
    courier = make.courier()
    assigned = make.task(courier=courier, waybill_no="MR-ASSIGNED")
    rows = [make.task_spec(waybill_no="MR-NEW"), make.task_spec(waybill_no="MR-BAD", kind="teleport"),
            {**make.task_spec(waybill_no="MR-ASSIGNED"),
             "recipient": client.get(f"/api/v1/dispatch/tasks/{assigned['id']}",
                                     headers=make.headers("dispatcher")).json["recipient"]}]
    rows[2]["parcels"] = assigned["parcels"]
    rows[2]["fees"], rows[2]["cod_amount"] = assigned["fees"], assigned["cod_amount"]
    first = upload(client, make, rows)
    assert first["counts"] == {"rows": 3, "created": 1, "updated": 0, "unchanged": 1, "quarantined": 1}
    before = feed_and_versions()
    events = db.session.scalar(select(func.count()).select_from(TaskEvent))
    again = upload(client, make, rows)
    assert again["counts"] == {"rows": 3, "created": 0, "updated": 0, "unchanged": 2, "quarantined": 1}
    assert again["file_sha256"] == first["file_sha256"]
    assert feed_and_versions() == before
    assert db.session.scalar(select(func.count()).select_from(TaskEvent)) == events
    assert db.session.scalar(select(func.count()).select_from(ManifestQuarantine)) == 1


def test_update_by_waybill(client, make):
    """A changed phone and parcel list update the open task: one version, a history entry, a feed change."""
    courier = make.courier()
    task = make.task(courier=courier, waybill_no="MU-1")
    spec = make.task_spec(waybill_no="MU-1")
    spec["recipient"]["phone"] = "13700000001"
    spec["parcels"] = [{"parcel_no": "NEW-1", "description": "crate", "count": 3}]
    changes, _ = feed_and_versions()
    report = upload(client, make, [spec])
    assert report["counts"]["updated"] == 1 and report["rows"][0]["task_id"] == task["id"]
    detail = client.get(f"/api/v1/dispatch/tasks/{task['id']}", headers=make.headers("dispatcher")).json
    assert detail["version"] == task["version"] + 1
    assert detail["recipient"]["phone"] == "13700000001" and detail["parcels"] == [
        dict(p, declared_value=None, insured=False) for p in spec["parcels"]]  # a manifest that declares nothing
    assert detail["recipient"]["name"] == spec["recipient"]["name"]
    assert detail["courier_id"] == courier["id"] and detail["status"] == "assigned"
    assert detail["window"] == task["window"]  # the appointment's, not upstream's
    updated = [e for e in detail["history"] if e["kind"] == "manifest_updated"]
    assert len(updated) == 1 and set(updated[0]["data"]["fields"]) >= {"recipient_name", "recipient_phone", "parcels"}
    assert feed_and_versions()[0] > changes
    assert upload(client, make, [spec])["counts"]["unchanged"] == 1


@pytest.mark.parametrize("status,code", [("delivered", "task_finished"), ("arrived", "task_in_progress")])
def test_rows_for_tasks_past_assignment(client, make, status, code):
    """A task at the door or finished keeps what it has: the same row is unchanged, a different one quarantined."""
    task = make.task(courier=make.courier(), waybill_no="MF-DONE")
    finished = datetime.now(timezone.utc) if status == "delivered" else None
    db.session.execute(update(Task).where(Task.id == task["id"]).values(status=status, finished_at=finished))
    db.session.commit()
    same = {**make.task_spec(waybill_no="MF-DONE"), "recipient": task["recipient"], "parcels": task["parcels"],
            "fees": task["fees"], "cod_amount": task["cod_amount"]}
    assert upload(client, make, [same])["counts"]["unchanged"] == 1
    changed = {**same, "recipient": {**task["recipient"], "address": "9 Elsewhere St"}}
    report = upload(client, make, [changed])
    assert reasons(report) == {1: {("waybill_no", code)}}
    assert report["rows"][0]["reasons"][0]["changed"] == ["address"]
    db.session.expire_all()
    assert db.session.get(Task, task["id"]).address == task["recipient"]["address"]
    assert reasons(upload(client, make, [{**same, "kind": "pickup", "cod_amount": 0}])) == {1: {("kind", "kind_changed")}}


def test_unreadable_upload_is_422_and_stores_nothing(client, make):
    """Not JSON, not an array, a wrong CSV header: 422 naming the problem, nothing kept."""
    headers = make.headers("dispatcher")
    for data, content_type, field in [(b"[{", "application/json", "file"), (b'{"a": 1}', "application/json", "file"),
                                      (b"waybill,who\nX,Y\n", "text/csv", "header"),
                                      (b"\xff\xfe", "text/csv", "file")]:
        response = client.post(UPLOAD, data=data, content_type=content_type, headers=headers)
        assert response.status_code == 422 and field in response.json["fields"], response.json
    assert client.post(UPLOAD, data=b"x", content_type="application/xml", headers=headers).status_code == 415
    assert db.session.scalar(select(func.count()).select_from(ManifestQuarantine)) == 0


def test_multipart_upload_by_file_name(client, make):
    """A multipart upload reads CSV, or JSON when the file is named .json; the file name is kept."""
    body = json.dumps([make.task_spec(waybill_no="MM-1", kind="teleport")]).encode()
    response = client.post(UPLOAD, data={"file": (io.BytesIO(body), "orders-0601.json")},
                           content_type="multipart/form-data", headers=make.headers("admin"))
    assert response.status_code == 200 and response.json["counts"]["quarantined"] == 1
    assert response.json["file_name"] == "orders-0601.json"


def test_quarantine_route_lists_and_resolves(client, make):
    """Dispatch lists quarantined rows newest first, filters them, resolves each once; others are refused."""
    upload(client, make, [make.task_spec(waybill_no="MQ-1", kind="x"), make.task_spec(waybill_no="MQ-2", kind="y")])
    headers = make.headers("dispatcher")
    page = client.get(QUARANTINE, headers=headers).json
    assert [i["row_number"] for i in page["items"]] == [2, 1]
    entry = page["items"][1]
    assert entry["waybill_no"] == "MQ-1" and entry["reasons"][0]["field"] == "kind" and entry["raw"]["kind"] == "x"
    resolved = client.post(f"{QUARANTINE}/{entry['id']}/resolve", json={"note": "fixed upstream, resent"},
                           headers=headers)
    assert resolved.status_code == 200 and resolved.json["resolved_at"] and resolved.json["resolved_by"]
    again = client.post(f"{QUARANTINE}/{entry['id']}/resolve", json={"note": "again"}, headers=headers)
    assert again.status_code == 409 and again.json["code"] == "already_resolved"
    missing = client.post(f"{QUARANTINE}/999999/resolve", json={"note": "x"}, headers=headers)
    assert missing.status_code == 404 and missing.json["code"] == "quarantine_entry_not_found"
    assert client.post(f"{QUARANTINE}/{entry['id']}/resolve", json={}, headers=headers).json["fields"] == {
        "note": ["Missing data for required field."]}
    open_rows = client.get(QUARANTINE, query_string={"resolved": "false"}, headers=headers).json["items"]
    assert [i["waybill_no"] for i in open_rows] == ["MQ-2"]
    by_waybill = client.get(QUARANTINE, query_string={"waybill_no": "mq-1"}, headers=headers).json["items"]
    assert [i["id"] for i in by_waybill] == [entry["id"]]
    for role in ("quality", "maintenance"):
        assert client.get(QUARANTINE, headers=make.headers(role)).status_code == 403
        assert client.post(UPLOAD, json=[], headers=make.headers(role)).status_code == 403


def test_an_integration_token_uploads_manifests_and_reads_nothing_else(client, make):
    """The upstream's integration token imports; it cannot read the tasks it made nor the quarantine."""
    report = upload(client, make, [make.task_spec(waybill_no="MI-1")], role="integration")
    assert report["counts"]["created"] == 1
    task_id = report["rows"][0]["task_id"]
    headers = make.headers("integration")
    assert client.get(f"/api/v1/dispatch/tasks/{task_id}", headers=headers).status_code == 403
    assert client.get("/api/v1/dispatch/manifests/quarantine", headers=headers).status_code == 403


def test_rows_with_characters_no_database_can_hold_are_quarantined_and_the_rest_taken(client, make):
    """A NUL or a lone surrogate in a row (value, waybill, key) or the file's name: the row is quarantined, kept
    with U+FFFD in their place, and the good row beside it is created (no 500, the file not lost)."""
    spec = make.task_spec
    rows = [spec(waybill_no="MU-GOOD"), spec(waybill_no="MU\u0000NUL"), {**spec(waybill_no="MU\ud800SUR")},
            {**spec(waybill_no="MU-NAME"), "recipient": {**spec()["recipient"], "name": "王\ud800"}},
            {**spec(waybill_no="MU-KEY"), "\ud800\u0000": 1}]
    body = json.dumps(rows).encode()  # ASCII escapes: the lone surrogate survives as \ud800
    response = client.post(UPLOAD, data={"file": (io.BytesIO(body), "orders\u0000.json")},
                           content_type="multipart/form-data", headers=make.headers("dispatcher"))
    assert response.status_code == 200, response.json
    report = response.json
    counts_add_up(report)
    assert report["counts"]["created"] == 1 and report["counts"]["quarantined"] == 4
    assert report["file_name"] == "orders\ufffd.json"
    assert [r["waybill_no"] for r in report["rows"]] == ["MU-GOOD", "MU\ufffdNUL", "MU\ufffdSUR", "MU-NAME", "MU-KEY"]
    assert {("\ufffd\ufffd", "unknown_field")} <= reasons(report)[5]
    db.session.expire_all()
    kept = db.session.scalars(select(ManifestQuarantine).order_by(ManifestQuarantine.row_number)).all()
    assert [q.row_number for q in kept] == [2, 3, 4, 5] and {q.file_name for q in kept} == {"orders\ufffd.json"}
    assert kept[2].raw["recipient"]["name"] == "王\ufffd" and "\ufffd\ufffd" in kept[3].raw
    listed = client.get(QUARANTINE, headers=make.headers("dispatcher"))
    assert listed.status_code == 200 and len(listed.json["items"]) == 4
    # The same bytes again change nothing: the quarantined rows are kept once.
    again = client.post(UPLOAD, data={"file": (io.BytesIO(body), "orders\u0000.json")},
                        content_type="multipart/form-data", headers=make.headers("dispatcher"))
    assert again.json["counts"] == {"rows": 5, "created": 0, "updated": 0, "unchanged": 1, "quarantined": 4}
    assert db.session.scalar(select(func.count()).select_from(ManifestQuarantine)) == 4


def test_a_nul_in_a_csv_cell_quarantines_that_row_only(client, make):
    """CSV: a NUL in the waybill cell of one line; the line beside it is created."""
    text = "\n".join([HEADER, csv_line("MUC-GOOD"), csv_line("MUC\u0000BAD")]) + "\n"
    report = upload(client, make, text, csv=True)
    assert report["counts"]["created"] == 1 and report["counts"]["quarantined"] == 1
    assert report["rows"][1]["waybill_no"] == "MUC\ufffdBAD"


# Rows that are not objects: each is quarantined as the JSON value it is (on SQLite a bare number
# was stored as a number and every read of the quarantine answered 500).
NOT_OBJECTS = [5, -7, 0, 0.5, 1.0, 1e300, 18446744073709551615, "5", "1e3", "null", "", True, False, None,
               [], [5], "中文"]


def test_a_row_that_is_no_object_reads_back_as_the_json_it_was(client, make):
    """Every such row is quarantined, listed as sent (same types), resolved once; the same file again adds none."""
    report = upload(client, make, NOT_OBJECTS)
    assert report["counts"]["quarantined"] == len(NOT_OBJECTS)
    headers = make.headers("dispatcher")
    listed = client.get(QUARANTINE, query_string={"limit": 100}, headers=headers)
    assert listed.status_code == 200, listed.json
    items = sorted(listed.json["items"], key=lambda i: i["row_number"])
    assert [(type(i["raw"]), i["raw"]) for i in items] == [(type(v), v) for v in NOT_OBJECTS]
    for item in items:
        resolved = client.post(f"{QUARANTINE}/{item['id']}/resolve", json={"note": "not a task"}, headers=headers)
        assert resolved.status_code == 200, resolved.json
        assert (type(resolved.json["raw"]), resolved.json["raw"]) == (type(item["raw"]), item["raw"])
    again = upload(client, make, NOT_OBJECTS)
    assert again["counts"]["quarantined"] == len(NOT_OBJECTS)
    assert db.session.scalar(select(func.count()).select_from(ManifestQuarantine)) == len(NOT_OBJECTS)
    assert client.get(QUARANTINE, query_string={"resolved": "false"}, headers=headers).json["items"] == []


def test_numbers_beside_a_lone_surrogate_are_kept_or_refused_never_a_500(client, make):
    """A lone surrogate sends the body through the standard library's parser, which reads integers beyond 64
    bits exactly: such a row is kept with the integer as its decimal text (no JSON column holds it, as the op
    log keeps one); NaN, Infinity and numbers beyond a double are refused as orjson refuses them."""
    def send(text):
        return client.post(UPLOAD, data=text.encode(), content_type="application/json",
                           headers=make.headers("dispatcher"))
    sent = send('["\\ud800", 18446744073709551616, -9223372036854775809, 18446744073709551615, '
                '{"cod_amount": 1180591620717411303424, "n": [1e2]}]')
    assert sent.status_code == 200 and sent.json["counts"]["quarantined"] == 5, sent.json
    listed = client.get(QUARANTINE, query_string={"limit": 100}, headers=make.headers("dispatcher"))
    assert listed.status_code == 200, listed.json
    assert [i["raw"] for i in sorted(listed.json["items"], key=lambda i: i["row_number"])] == [
        "\ufffd", "18446744073709551616", "-9223372036854775809", 18446744073709551615,
        {"cod_amount": "1180591620717411303424", "n": [100.0]}]
    for text in ('["\\ud800", NaN]', '["\\ud800", -Infinity]', '["\\ud800", 1e400]'):
        refused = send(text)
        assert refused.status_code == 422 and refused.json["code"] == "validation_failed", (text, refused.json)
    assert db.session.scalar(select(func.count()).select_from(ManifestQuarantine)) == 5
