"""Human text refuses characters that show nothing, in every field and every way in (schemas.common.Text)."""
import pytest

# Zero-width space, byte-order mark, soft hyphen, zero-width joiner between letters, word joiner, Hangul filler,
# left-to-right mark, a variation selector after a letter, a tag character.
INVISIBLE = ["\u200b", "\ufeff", "\u00ad", "\u200d", "\u2060", "\u3164", "\u200e", "\ufe0f", "\U000e0041"]
# Names people have: Chinese, Latin with accents and apostrophes, Vietnamese, Polish; and emoji in free text.
ORDINARY_NAMES = ["王小明", "欧阳 娜娜", "José Núñez", "Zoë O'Brien", "Nguyễn Văn An", "Łukasz Żółć", "Åsa Ørsted"]


def _payload(make, route: str, value: str) -> tuple[str, str, dict, str]:
    """(method, url, body, field) putting value in the route's human-text field."""
    if route == "courier.name":
        return "post", "/api/v1/dispatch/couriers", {"name": value, "phone": "13800001111", "employee_no": "E77"}, \
            "name"
    if route == "courier.rename":
        courier = make.courier()
        return "patch", f"/api/v1/dispatch/couriers/{courier['id']}", {"name": value}, "name"
    if route == "recipient.name":
        spec = make.task_spec()
        spec["recipient"]["name"] = value
        return "post", "/api/v1/dispatch/tasks", spec, "recipient.name"
    if route == "recipient.address":
        spec = make.task_spec()
        spec["recipient"]["address"] = value
        return "post", "/api/v1/dispatch/tasks", spec, "recipient.address"
    if route == "gift_description":
        return "post", "/api/v1/dispatch/tasks", make.task_spec(gift_description=value), "gift_description"
    if route == "import.recipient.name":
        spec = make.task_spec()
        spec["recipient"]["name"] = value
        return "post", "/api/v1/dispatch/tasks/import", [make.task_spec(), spec], "tasks.1.recipient.name"
    if route == "cancel.reason":
        return "post", f"/api/v1/dispatch/tasks/{make.task()['id']}/cancel", {"reason": value}, "reason"
    if route == "note.text":
        return "post", f"/api/v1/dispatch/tasks/{make.task()['id']}/notes", {"text": value}, "text"
    if route == "complaint.text":
        return "post", "/api/v1/dispatch/complaints", {"channel": "phone", "category": "impolite", "text": value,
                                                        "courier_id": make.courier()["id"]}, "text"
    raise AssertionError(route)


ROUTES = ["courier.name", "courier.rename", "recipient.name", "recipient.address", "gift_description",
          "import.recipient.name", "cancel.reason", "note.text", "complaint.text"]


@pytest.mark.parametrize("route", ROUTES)
def test_an_invisible_character_is_422_naming_the_field(client, make, route):
    """Each invisible character inside a word, where it hides a difference: 422 validation_failed naming the
    field."""
    for char in INVISIBLE:
        method, url, body, field = _payload(make, route, f"Li{char}Na")
        response = getattr(client, method)(url, json=body, headers=make.headers("dispatcher"))
        assert response.status_code == 422, (f"U+{ord(char):04X}", response.status_code, response.json)
        assert response.mimetype == "application/problem+json"
        assert response.json["code"] == "validation_failed"
        assert list(response.json["fields"]) == [field], (f"U+{ord(char):04X}", response.json)
        assert "invisible" in " ".join(response.json["fields"][field])


@pytest.mark.parametrize("char", ["\ufeff", "\u200b"], ids=lambda c: f"U+{ord(c):04X}")
def test_an_invisible_character_at_either_end_is_refused_not_stripped(client, make, char):
    """Stripping spaces does not take them (Python's strip leaves them): still 422."""
    response = client.post("/api/v1/dispatch/couriers", json={"name": f"{char}Li Na{char}", "phone": "13800001111",
                                                              "employee_no": "E78"},
                           headers=make.headers("dispatcher"))
    assert response.status_code == 422 and "name" in response.json["fields"], response.json


@pytest.mark.parametrize("name", ORDINARY_NAMES)
def test_ordinary_names_are_accepted_as_written(client, make, name):
    """Chinese, accented and apostrophed names: a courier and a recipient, stored as written."""
    courier = make.courier(name=name)
    assert courier["name"] == name
    task = make.task(recipient={"name": name, "phone": "13912345678", "address": "1 Renmin Rd"})
    assert task["recipient"]["name"] == name


def test_emoji_stay_in_free_text(client, make):
    """An emoji's selector or joiner shows as part of one picture: a note or a complaint keeps it."""
    text = "谢谢❤️ 门口见 👩‍💻 1️⃣ 👍🏽"
    task = make.task()
    response = client.post(f"/api/v1/dispatch/tasks/{task['id']}/notes", json={"text": text},
                           headers=make.headers("dispatcher"))
    assert response.status_code in (200, 201), response.json
    response = client.post("/api/v1/dispatch/complaints", json={"channel": "phone", "category": "impolite",
                                                                "text": text, "courier_id": make.courier()["id"]},
                           headers=make.headers("dispatcher"))
    assert response.status_code == 201, response.json
    assert response.json["text"] == text
