"""Human text in push ops refuses characters that show nothing (schemas.common.Text), naming the field."""
import pytest

from tests.api.test_invisible_text import INVISIBLE, ORDINARY_NAMES
from tests.sync.test_handover import codes, inspect_ok, one, sign, upload, verify

SIGNATURE = "a" * 64  # never uploaded: the payload is refused before any file is looked for


def _payload(task: dict, field: str, value: str) -> tuple[str, dict]:
    """(op type, payload) with value in the op's human-text field."""
    if field == "payload.text":
        return "task.note", {"text": value}
    if field == "payload.name":
        return "pod.verify_recipient", verify(name=value)
    if field == "payload.relation":
        return "pod.verify_recipient", verify(method="proxy", relation=value)
    if field == "payload.signer_name":
        return "pod.sign", sign(SIGNATURE, signer_name=value)
    if field == "payload.note":
        return "pod.refuse", {"reason": "damaged", "note": value}
    if field == "payload.authorization.reference":
        return "pod.deliver_alternate", {"place": "locker", "authorization": {"via": "contact", "reference": value}}
    if field == "payload.parcels.0.description":
        return "pickup.collect", {"parcels": [{"parcel_no": "P1", "description": value}], "signature": SIGNATURE,
                                  "signer_name": "Sender"}
    if field == "payload.reason":
        return "appointment.late_notice", {"eta": task["window"]["end"], "reason": value}
    raise AssertionError(field)


def _with(task: dict, field: str, value: str) -> tuple[str, str, dict]:
    """(op type, task id, payload) for Device.op."""
    type_, payload = _payload(task, field, value)
    return type_, task["id"], payload


FIELDS = ["payload.text", "payload.name", "payload.relation", "payload.signer_name", "payload.note",
          "payload.authorization.reference", "payload.parcels.0.description", "payload.reason"]


@pytest.mark.parametrize("char", INVISIBLE, ids=lambda c: f"U+{ord(c):04X}")
def test_an_invisible_character_in_an_op_is_invalid_payload_naming_the_field(device, make, courier, char):
    """In every op's human-text field (one batch, an op per field): rejected invalid_payload (consumed, logged),
    the field named, nothing applied."""
    task = make.task(courier=courier)
    ops = [device.op(*_with(task, field, f"Li{char}Na")) for field in FIELDS]
    body = device.push(ops)
    assert body["last_seq"] == ops[-1]["seq"]
    for field, result in zip(FIELDS, body["results"], strict=True):
        assert (result["status"], result["code"]) == ("rejected", "invalid_payload"), result
        assert list(result["fields"]) == [field], result
        assert "invisible" in " ".join(result["fields"][field])


@pytest.mark.parametrize("name", ORDINARY_NAMES)
def test_ordinary_names_sign_for_a_parcel(device, make, courier, name):
    """A recipient checked and signing under a Chinese or accented name: applied, and stored as written."""
    task = make.task(courier=courier, cod_amount=0, fees=[])
    results = device.push([device.op("pod.verify_recipient", task["id"], verify(name=name)),
                           device.op("pod.inspect", task["id"], inspect_ok(task)),
                           device.op("pod.sign", task["id"], sign(upload(device), signer_name=name))])["results"]
    assert codes(results) == [("applied", None)] * 3, results


def test_emoji_stay_in_a_note(device, make, courier):
    """A courier's note may hold emoji: their joiners and selectors are part of one picture."""
    task = make.task(courier=courier)
    result = one(device, "task.note", task["id"], {"text": "客户说谢谢❤️ 👩‍💻 放在门口 👍🏽"})
    assert result["status"] == "applied", result
