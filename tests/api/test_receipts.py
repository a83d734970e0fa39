"""Receipts over HTTP: the public keys, dispatch's view, the public page and its JSON, offline verification."""
import ast
import base64
import importlib.util
import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from server.config import FailureLimit
from server.extensions import db
from server.models import Receipt
from server.services import receipts
from tests.api.test_ratings import deliver
from tests.services.test_receipts import evidence
from tests.sync.conftest import Device
from tests.sync.test_handover import AT_DOOR, due, inspect_ok, sign, upload, verify

VERIFIER = Path(__file__).resolve().parents[2] / "scripts" / "verify_receipt.py"


@pytest.fixture
def task(make):
    """A delivered task's data: a Chinese recipient with phone and full address."""
    return make.task(courier=make.courier(), recipient={"name": "王小明", "phone": "13912345678",
                                                        "address": "上海市黄浦区人民路123号5栋301室"})


@pytest.fixture
def receipt(app, task):
    """A committed delivery receipt: (number, page path)."""
    issued = receipts.issue(task_id=task["id"], kind="delivery", evidence=evidence(
        photos=["cd" * 32], inspection={"items": [{"parcel_no": "P1-1", "counted": 2, "condition": "ok"},
                                                  {"parcel_no": "P1-2", "counted": 1, "condition": "damaged"}],
                                        "customer_accepted": True}))
    db.session.commit()
    return issued.number, f"/r/{receipts.page_token(issued)}"


def verify_offline(tmp_path, document: dict, keys: dict) -> subprocess.CompletedProcess:
    """Run the standalone verifier on the two files, as a customer or a court would."""
    (tmp_path / "receipt.json").write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "keys.json").write_text(json.dumps(keys), encoding="utf-8")
    return subprocess.run([sys.executable, str(VERIFIER), "receipt.json", "keys.json"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)


# --- keys -----------------------------------------------------------------------------------------

def test_keys_are_public_jwks(client, receipt):
    """No token needed; each key as an OKP JWK with its id, status and validity."""
    answer = client.get("/api/v1/receipts/keys")
    assert answer.status_code == 200
    (key,) = answer.json["keys"]
    assert {k: key[k] for k in ("kty", "crv", "alg", "use", "status")} == \
        {"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "status": "active"}
    assert len(key["kid"]) == 16 and len(key["x"]) == 43 and key["valid_until"] is None and key["valid_from"]


# --- dispatch -------------------------------------------------------------------------------------

def test_the_spec_tells_a_receipt_number_from_the_keys_route(client, receipt):
    """GET /receipts/keys is the key set: the fuzzer, sending `keys` as a number, got it back where a receipt
    was documented. The spec's number pattern takes an issued number, and not `keys`."""
    spec = client.get("/api/v1/openapi.json").json
    for path in ("/api/v1/receipts/{number}", "/api/v1/receipts/{number}/qr.{fmt}"):
        [number] = [p for p in spec["paths"][path]["parameters"] if p["name"] == "number"]
        assert re.search(number["schema"]["pattern"], receipt[0]) and not re.search(number["schema"]["pattern"], "keys")


def test_staff_get_the_whole_sealed_receipt(client, make, task, receipt):
    """The sealed receipt, its seal, whether it verifies, and the page's address (office roles)."""
    number, path = receipt
    for role in ("admin", "dispatcher", "quality"):
        answer = client.get(f"/api/v1/receipts/{number}", headers=make.headers(role))
        assert answer.status_code == 200, answer.json
    body = answer.json
    assert body["number"] == number and body["kind"] == "delivery" and body["task_id"] == task["id"]
    assert body["verified"] is True and body["url"].endswith(path)
    assert body["receipt"]["evidence"]["photos"] == ["cd" * 32] and body["seal"]["alg"] == "Ed25519"
    assert body["seal"]["key_id"] == body["receipt"]["key_id"]


def test_staff_routes_refuse_others_and_unknown_numbers(client, make, receipt):
    """No token 401, maintenance and couriers 403, an unknown number 404."""
    number, _path = receipt
    assert client.get(f"/api/v1/receipts/{number}").status_code == 401
    assert client.get(f"/api/v1/receipts/{number}", headers=make.headers("maintenance")).status_code == 403
    courier = make.device(make.courier())
    assert client.get(f"/api/v1/receipts/{number}",
                      headers={"Authorization": f"Bearer {courier['token']}"}).status_code == 403
    answer = client.get("/api/v1/receipts/FO-20000101-00001", headers=make.headers("dispatcher"))
    assert answer.status_code == 404 and answer.json["code"] == "receipt_not_found"


def test_qr_images_of_the_page(client, make, receipt):
    """Dispatch prints the QR by number; the page serves its own; both encode the page's address."""
    number, path = receipt
    png = client.get(f"/api/v1/receipts/{number}/qr.png", headers=make.headers("dispatcher"))
    assert png.status_code == 200 and png.mimetype == "image/png" and png.data.startswith(b"\x89PNG")
    svg = client.get(path + "/qr.svg")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml" and b"<svg" in svg.data
    assert client.get(f"/api/v1/receipts/{number}/qr.gif", headers=make.headers("dispatcher")).status_code == 404
    assert client.get(path + "/qr.gif").status_code == 404


# --- the public page ------------------------------------------------------------------------------

def test_page_shows_only_what_it_must(client, task, receipt):
    """Number, kind, masked recipient, time, inspection, fees, seal; no phone, address, name, waybill or ids."""
    number, path = receipt
    page = client.get(path)
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "电子回单" in page.text and f'<span id="number">{number}</span>' in page.text
    assert '<span id="recipient">王**</span>' in page.text and '<span id="time">2026-11-24 11:10</span>' in page.text
    assert "P1-2" in page.text and "破损" in page.text and '<span id="accepted">是</span>' in page.text
    assert "派送费" in page.text and "¥12.00" in page.text and '<span id="amount">¥61.90</span>' in page.text
    assert 'id="cod">¥49.90</span>' in page.text
    assert 'class="status ok"' in page.text and "签章有效" in page.text
    token = path.removeprefix("/r/")
    # The forms' CSRF tokens are random hex: one may hold "123" or "301" by chance.
    shown = re.sub(r'name="csrf" value="[0-9a-f]+"', 'name="csrf"', page.text.replace(token, ""))
    for secret in ("小明", "13912345678", "人民路", "123", "301", task["waybill_no"], task["id"], "ab" * 32, "cd" * 32):
        assert secret not in shown, secret


def test_the_page_shows_the_cod_goods_amount_the_payment_includes(client, make):
    """A COD delivery handed over from the handheld: its fees, the COD goods amount on its own line, and the amount
    paid that is their sum, in Chinese and English; a refusal before any payment shows no COD line."""
    _device, task, pushed = _handed_over(client, make)
    path = pushed["entity"]["data"]["handover"]["receipt"]["url"].removeprefix("http://localhost")
    page = client.get(path)
    assert (task["cod_amount"], [fee["amount"] for fee in task["fees"]]) == (4990, [1200])
    assert "派送费" in page.text and '<span class="fee-amount">¥12.00</span>' in page.text
    assert '<span class="fee-name">代收货款</span> <span class="fee-amount" id="cod">¥49.90</span>' in page.text
    assert '<span id="amount">¥61.90</span>' in page.text
    english = client.get(path, query_string={"lang": "en"})
    assert '<span class="fee-name">Cash on delivery (goods)</span> <span class="fee-amount" id="cod">¥49.90</span>' \
        in english.text
    courier = make.courier()
    device, refused = Device(client, make.device(courier)), make.task(courier=courier)
    results = device.push([device.op("pod.verify_recipient", refused["id"], verify()),
                           device.op("pod.inspect", refused["id"], inspect_ok(refused, customer_accepted=False)),
                           device.op("pod.refuse", refused["id"], {"reason": "quality"})])["results"]
    page = client.get(results[-1]["entity"]["data"]["handover"]["receipt"]["url"].removeprefix("http://localhost"))
    assert page.status_code == 200 and 'id="cod"' not in page.text and '<span id="amount">¥0.00</span>' in page.text


def test_page_in_english(client, receipt):
    """Accept-Language or ?lang=en: the same facts in English."""
    _number, path = receipt
    page = client.get(path, headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert "Receipt number" in page.text and "damaged" in page.text and "The seal verifies" in page.text
    assert "电子回单" in client.get(path + "?lang=zh", headers={"Accept-Language": "en"}).text


def test_page_headers(client, receipt):
    """The customer page's strict CSP, nosniff, nothing cached or referred."""
    _number, path = receipt
    for url in (path, path + ".json", "/r/for_nothing"):
        headers = client.get(url).headers
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff" and headers["Cache-Control"] == "no-store"
        assert headers["Referrer-Policy"] == "no-referrer"


def test_a_tampered_stored_receipt_says_its_seal_fails(client, receipt):
    """Someone edits the stored amount: the page says the seal does not verify."""
    number, path = receipt
    stored = receipts.get(number=number)
    stored.payload = stored.payload.replace('"amount":6190', '"amount":6191')
    db.session.commit()
    page = client.get(path)
    assert 'class="status bad"' in page.text and "签章无效" in page.text


@pytest.mark.parametrize("bad", ["for_" + "A" * 43, "for_short", "nonsense", "FO-20261124-00001", "for_" + "A" * 200])
def test_bad_and_unknown_tokens_are_the_same_404(client, receipt, bad):
    """Malformed, unknown, a receipt number or an overlong token: one friendly 404, nothing leaked."""
    number, path = receipt
    page = client.get(f"/r/{bad}")
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert "回单链接无效" in page.text and number not in page.text and "Traceback" not in page.text
    same = client.get("/r/for_" + "B" * 43)
    assert page.text == same.text
    machine = client.get(f"/r/{bad}.json")
    assert machine.status_code == 404 and machine.mimetype == "application/problem+json"
    assert machine.json["code"] == "receipt_link_invalid"


def test_rate_limit_per_receipt_never_touches_another(client, app, make, receipt):
    """Past a receipt's budget: 429 with Retry-After (page, JSON, QR alike); another receipt is served."""
    app.config["RECEIPT_PAGE_REQUESTS"] = FailureLimit(3, 600)
    _number, path = receipt
    other = receipts.issue(task_id=make.task()["id"], kind="pickup", evidence={})
    db.session.commit()
    other_path = f"/r/{receipts.page_token(other)}"
    assert [client.get(url).status_code for url in (path, path + ".json", path + "/qr.png")] == [200, 200, 200]
    page = client.get(path + "?lang=en")
    assert page.status_code == 429 and "Too many requests" in page.text and int(page.headers["Retry-After"]) > 0
    assert client.get(path + ".json").status_code == 429
    assert [client.get(other_path).status_code for _ in range(3)] == [200, 200, 200]


def test_guessing_tokens_is_limited_per_address_but_a_real_token_is_served(client, app, receipt):
    """Unknown tokens count against the caller's address (429 once spent); a valid token still opens."""
    app.config["RECEIPT_TOKEN_FAILURES_PER_ADDRESS"] = FailureLimit(3, 600)
    _number, path = receipt
    assert [client.get(f"/r/for_{'C' * 42}{i}").status_code for i in range(4)] == [404, 404, 404, 429]
    assert client.get(path).status_code == 200


def test_receipt_tokens_are_redacted_from_the_logs(client, receipt, lines):
    """The access line's path says [redacted]; a token-shaped string is redacted anywhere."""
    _number, path = receipt
    client.get(path)
    client.get(path + ".json")
    logging.getLogger("t").warning("saw %s", path)
    token = path.removeprefix("/r/")
    assert token[4:] not in "\n".join(lines)
    paths = [json.loads(line)["path"] for line in lines if '"fieldops.access"' in line]
    assert paths == ["/r/[redacted]", "/r/[redacted].json"]
    assert json.loads(lines[-1])["msg"] == "saw /r/for_[redacted]"


# --- offline verification -------------------------------------------------------------------------

def test_the_json_form_verifies_offline_with_only_the_public_key(client, receipt, tmp_path):
    """/r/<token>.json (or Accept: application/json) plus GET /keys: the standalone verifier says OK."""
    number, path = receipt
    document = client.get(path + ".json")
    assert document.status_code == 200 and document.mimetype == "application/json"
    assert client.get(path, headers={"Accept": "application/json"}).json == document.json
    assert set(document.json) == {"receipt", "seal"}
    result = verify_offline(tmp_path, document.json, client.get("/api/v1/receipts/keys").json)
    assert result.returncode == 0, result.stderr
    assert f"OK: receipt {number} verifies" in result.stdout


@pytest.mark.parametrize("tamper", [
    lambda d: d["receipt"]["evidence"].update(amount=d["receipt"]["evidence"]["amount"] + 1),  # one fen
    lambda d: d["receipt"]["evidence"]["fees"][0].update(amount=1201),
    lambda d: d["receipt"]["evidence"].update(recipient="李**"),
    lambda d: d["receipt"]["evidence"]["inspection"]["items"][1].update(condition="ok"),
    lambda d: d["receipt"]["evidence"]["photos"].append("ef" * 32),
    lambda d: d["receipt"].update(number=d["receipt"]["number"][:-1] + "9"),
    lambda d: d["receipt"].update(issued_at="2020-01-01T00:00:00Z"),
    lambda d: d["receipt"].update(kind="refusal"),
    lambda d: d["receipt"]["evidence"].update(amount=61.9),
    lambda d: d["receipt"]["evidence"].update(extra="added"),
    lambda d: d["seal"].update(signature=d["seal"]["signature"][:-2] + ("AA" if d["seal"]["signature"][-2:] != "AA"
                                                                       else "BA")),
], ids=["one-fen", "fee", "recipient", "condition", "photo", "number", "time", "kind", "float", "added", "signature"])
def test_a_tampered_receipt_fails_offline(client, receipt, tmp_path, tamper):
    """Any field changed, even by one fen: the verifier exits 1."""
    _number, path = receipt
    document = client.get(path + ".json").json
    tamper(document)
    result = verify_offline(tmp_path, document, client.get("/api/v1/receipts/keys").json)
    assert result.returncode == 1 and "INVALID" in result.stderr


def test_a_receipt_sealed_by_an_unknown_key_fails_offline(client, app, make, receipt, tmp_path):
    """Signed by a key that is not published (or with the key list of another server): exit 1."""
    _number, path = receipt
    keys = client.get("/api/v1/receipts/keys").json
    app.config["RECEIPT_KEY"] = base64.b64encode(Ed25519PrivateKey.generate().private_bytes_raw()).decode()
    foreign = receipts.issue(task_id=make.task()["id"], kind="delivery", evidence=evidence())
    db.session.commit()
    foreign_key, foreign_document = foreign.key_id, receipts.sealed(foreign)
    result = verify_offline(tmp_path, foreign_document, keys)  # the keys as published before
    assert result.returncode == 1 and "unknown key" in result.stderr
    genuine = client.get(path + ".json").json
    genuine["seal"]["key_id"] = genuine["receipt"]["key_id"] = foreign_key  # renamed to the other key
    result = verify_offline(tmp_path, genuine, client.get("/api/v1/receipts/keys").json)
    assert result.returncode == 1 and "does not verify" in result.stderr


def test_old_receipts_verify_offline_after_rotation(client, app, make, receipt, tmp_path):
    """Rotate the key: the old receipt and a new one both verify against the published key set."""
    _number, path = receipt
    app.config["RECEIPT_KEY"] = None
    app.config["RECEIPT_KEY_FILE"] = str(tmp_path / "instance" / "receipt-key.pem")
    assert app.test_cli_runner().invoke(args=["receipt-key", "rotate"]).exit_code == 0
    new = receipts.issue(task_id=make.task()["id"], kind="delivery", evidence=evidence())
    db.session.commit()
    keys = client.get("/api/v1/receipts/keys").json
    assert [k["status"] for k in keys["keys"]] == ["retired", "active"]
    for document in (client.get(path + ".json").json, client.get(f"/r/{receipts.page_token(new)}.json").json):
        result = verify_offline(tmp_path, document, keys)
        assert result.returncode == 0, result.stderr


def test_the_verifier_stands_alone():
    """It imports only the standard library and cryptography: no app, no database, no Fieldops module."""
    tree = ast.parse(VERIFIER.read_text(encoding="utf-8"))
    imported = {alias.name.partition(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.partition(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= set(sys.stdlib_module_names) | {"cryptography"}, imported


def test_the_verifier_and_the_server_write_the_same_canonical_json():
    """The documented form, two implementations: the standalone verifier agrees with the server byte for byte."""
    spec = importlib.util.spec_from_file_location("verify_receipt", VERIFIER)
    verifier = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(verifier)
    value = {"z": [1, -2, True, None, "王\u2028\x00\"\\/"], "a": {"b": "", "A": 2 ** 53 - 1}, "~": "😀"}
    assert verifier.canonical_json(value) == receipts.canonical_json(value)


# --- one receipt on every face --------------------------------------------------------------------

def _handed_over(client, make) -> tuple[Device, dict, dict]:
    """A doorstep handover pushed from a courier's handheld: (device, task, the push's last result)."""
    courier = make.courier()
    device = Device(client, make.device(courier))
    task = make.task(courier=courier)
    signature = upload(device)
    pushed = device.push([device.op("pod.verify_recipient", task["id"], verify()),
                          device.op("pod.inspect", task["id"], inspect_ok(task)),
                          device.op("pod.collect_payment", task["id"], {"amount": due(task), "method": "cash"}),
                          device.op("pod.sign", task["id"], sign(signature))])["results"][-1]
    return device, task, pushed


def _receipt_on_every_face(client, make, device: Device, task: dict, pushed: dict) -> dict:
    """The task's receipt as each face shows it: {face: {number, url}}."""
    own, dispatcher = {"Authorization": device.headers["Authorization"]}, make.headers("dispatcher")
    listed = client.get("/api/v1/me/tasks", headers=own)
    one = client.get(f"/api/v1/me/tasks/{task['id']}", headers=own)
    handover = client.get(f"/api/v1/dispatch/tasks/{task['id']}/handover", headers=dispatcher)
    assert (listed.status_code, one.status_code, handover.status_code) == (200, 200, 200)
    number = handover.json["state"]["receipt"]["number"] if handover.json["state"]["receipt"] else None
    by_number = client.get(f"/api/v1/receipts/{number}", headers=dispatcher).json if number else {}
    return {"push": pushed["entity"]["data"]["handover"]["receipt"],
            "pull": device.pull_all()[0][("task", task["id"])]["data"]["handover"]["receipt"],
            "me/tasks": next(t for t in listed.json["items"] if t["id"] == task["id"])["handover"]["receipt"],
            "me/tasks/{id}": one.json["handover"]["receipt"],
            "dispatch handover": handover.json["state"]["receipt"],
            "dispatch receipt": {key: by_number.get(key) for key in ("number", "url")}}


def test_every_face_shows_the_same_receipt_with_its_page(client, make):
    """A handover pushed from the handheld: the push answer, a pull, /me/tasks, /me/tasks/{id}, dispatch's handover
    and receipt views all show one receipt, its number and its page's real address (which opens)."""
    device, task, pushed = _handed_over(client, make)
    stored = db.session.scalars(select(Receipt).where(Receipt.task_id == task["id"])).one()
    expected = {"number": stored.number, "url": f"http://localhost/r/{receipts.page_token(stored)}"}
    shown = _receipt_on_every_face(client, make, device, task, pushed)
    assert shown == dict.fromkeys(shown, expected)
    assert client.get(expected["url"].removeprefix("http://localhost")).status_code == 200
    # Another handover dumped for the handheld's doc in this session: the online routes still show addresses.
    deliver(device, make.task(courier={"id": task["courier_id"]}))
    listed = client.get("/api/v1/me/tasks", headers={"Authorization": device.headers["Authorization"]})
    assert all(t["handover"]["receipt"]["url"].startswith("http://localhost/r/for_")
               for t in listed.json["items"] if t["handover"]["outcome"]) and "fieldops-sealed" not in listed.text


def test_a_receipt_whose_address_is_lost_shows_none_on_every_face(client, app, make):
    """FIELDOPS_SECRET_KEY changed: no face can recover the page's address, all say null alike (the page still
    opens by its hash for whoever holds the link)."""
    device, task, pushed = _handed_over(client, make)
    number = pushed["entity"]["data"]["handover"]["receipt"]["number"]
    page = pushed["entity"]["data"]["handover"]["receipt"]["url"].removeprefix("http://localhost")
    app.config["SECRET_KEY"] = "another-secret-key"
    shown = _receipt_on_every_face(client, make, device, task, pushed)
    shown.pop("push")  # answered before the key changed
    assert shown == dict.fromkeys(shown, {"number": number, "url": None})
    assert client.get(page).status_code == 200


def test_a_pickup_receipt_names_the_sender_and_shows_no_condition_it_lacks(client, make):
    """A pickup collected from the handheld: the page names the sender (not a recipient) and lists each parcel with
    its count, with no condition (a pickup records none) and no separator left dangling; a delivery keeps its."""
    courier = make.courier()
    device = Device(client, make.device(courier))
    task = make.task(courier=courier, kind="pickup", cod_amount=0, fees=[])
    body = {"parcels": [{"parcel_no": "PK1", "description": "books", "count": 2}],
            "fees": [{"code": "delivery", "amount": 1500}], "payment": {"amount": 1500, "method": "cash"},
            "signature": upload(device), "signer_name": "Sender", **AT_DOOR}
    result = device.push([device.op("pickup.collect", task["id"], body)])["results"][0]
    path = result["entity"]["data"]["handover"]["receipt"]["url"].removeprefix("http://localhost")
    english, chinese = client.get(path, query_string={"lang": "en"}), client.get(path, query_string={"lang": "zh"})
    assert '<span class="label">Sender</span>' in english.text and "Recipient" not in english.text
    assert '<span class="label">寄件人</span>' in chinese.text and "收件人" not in chinese.text
    assert re.search(r'<span class="parcel">PK1</span> · counted 2</li>', english.text), english.text
    assert 'class="condition"' not in english.text
    delivered = client.get(_handed_over(client, make)[2]["entity"]["data"]["handover"]["receipt"]["url"]
                           .removeprefix("http://localhost"), query_string={"lang": "en"})
    assert '<span class="label">Recipient</span>' in delivered.text
    assert re.search(r'counted \d+ · <span class="condition">good</span></li>', delivered.text), delivered.text
