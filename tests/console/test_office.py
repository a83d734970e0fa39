"""The office's console pages: the exceptions queue worked through a browser's forms, a courier's day and a depot's
cash reconciling to the fen, and the CSV downloads on the session cookie."""
import csv
import io
import re

from sqlalchemy import select

from schemas import vocab
from server.console import words
from server.services import claims
from server.console.i18n import _TEXT

from server.clock import local_date, utcnow
from server.extensions import db
from server.models import AuditEntry
from tests.api.test_office import _pay, _remit
from tests.sync.conftest import Device


def test_queue_acknowledge_and_resolve_through_the_forms(client, make, console_as, csrf_of):
    """A dispatcher acknowledges and resolves with a note; both audited; quality sees no buttons and is refused."""
    courier = make.courier(depot="SH01")
    device = Device(client, make.device(courier))
    task = make.task(courier=courier)
    device.push([device.op("appointment.contact", task["id"], {"outcome": "wrong_number"})])
    exception_id = client.get("/api/v1/dispatch/exceptions", query_string={"kind": "wrong_number"},
                              headers=make.headers("dispatcher")).json["items"][0]["id"]
    browser = console_as("dispatcher")
    page = browser.get("/console/exceptions").get_data(as_text=True)
    assert f'id="ack-{exception_id}"' in page and task["waybill_no"] in page
    token = csrf_of(browser, "/console/exceptions")
    acked = browser.post(f"/console/exceptions/{exception_id}/acknowledge", data={"csrf_token": token})
    assert acked.status_code == 303
    assert browser.post(f"/console/exceptions/{exception_id}/acknowledge", data={}).status_code == 400  # no CSRF
    resolved = browser.post(f"/console/exceptions/{exception_id}/resolve",
                            data={"csrf_token": token, "note": "New number from the sender"})
    assert resolved.status_code == 303
    done = browser.get("/console/exceptions?status=resolved&lang=en").get_data(as_text=True)
    assert "New number from the sender" in done and "Resolved" in done
    assert sorted(db.session.scalars(select(AuditEntry.action).where(AuditEntry.entity == "handover_exceptions"))) == [
        "exception.acknowledge", "exception.resolve"]
    again = browser.post(f"/console/exceptions/{exception_id}/resolve", data={"csrf_token": token, "note": "other"})
    assert again.status_code == 200 and "alert" in again.get_data(as_text=True)
    quality = console_as("quality")
    assert 'id="ack-' not in quality.get("/console/exceptions?status=all").get_data(as_text=True)
    token = csrf_of(quality, "/console/exceptions")
    assert quality.post(f"/console/exceptions/{exception_id}/acknowledge", data={"csrf_token": token}).status_code == 403
    rows = list(csv.DictReader(io.StringIO(browser.get("/console/exceptions.csv?status=all").get_data(as_text=True)[1:])))
    assert [(r["id"], r["status"]) for r in rows] == [(str(exception_id), "resolved")]


def test_a_courier_day_and_depot_cash_to_the_fen(client, make, console_as):
    """Cash collected at the door, a remittance: the page shows the hand-computed difference; the ledger CSV."""
    courier = make.courier(depot="SH01")
    device = Device(client, make.device(courier))
    today = local_date(utcnow()).isoformat()
    _pay(device, make, courier, 4990)
    _pay(device, make, courier, 1234)
    _remit(client, make, courier, today, 8600)
    browser = console_as("dispatcher")
    day = browser.get(f"/console/couriers/{courier['id']}/day?date={today}").get_data(as_text=True)
    assert 'id="collected">¥86.24<' in day and 'id="remitted">¥86.00<' in day and 'id="difference">¥0.24<' in day
    depot = browser.get(f"/console/depots/SH01/cash?date={today}").get_data(as_text=True)
    assert "¥86.24" in depot and "¥0.24" in depot
    ledger = browser.get(f"/console/ledger.csv?depot=SH01&date={today}")
    assert ledger.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(ledger.get_data(as_text=True)[1:])))
    assert sorted(int(r["amount"]) for r in rows) == [2434, 6190, 8600]
    assert browser.get("/console/couriers/c-nobody/day").status_code == 404
    assert console_as("maintenance").get("/console/depots/SH01/cash").status_code == 403


def test_depot_cash_offers_the_depots_couriers_work_from_and_refuses_an_unknown_one_on_the_page(make, console_as):
    """The depot is a select of the depots couriers work out of (each once), the first shown when none is asked;
    an unknown depot is refused in the page's language with the form still there."""
    make.courier(depot="SH02", name="Zhao Lei")
    make.courier(depot="SH01")
    make.courier(depot="SH02")
    make.courier()
    browser = console_as("dispatcher")
    page = browser.get("/console/depots/cash").get_data(as_text=True)
    assert '<select id="depot" name="depot" required>' in page
    assert page.count('<option value="SH01" selected>') == 1 and page.count('<option value="SH02">') == 1
    assert 'id="depot-cash"' in page and ": SH01" in page
    chosen = browser.get("/console/depots/cash?depot=SH02").get_data(as_text=True)
    assert '<option value="SH02" selected>' in chosen and "Zhao Lei" in chosen
    unknown = browser.get("/console/depots/cash?depot=XX99")
    text = unknown.get_data(as_text=True)
    assert unknown.status_code == 200 and 'role="alert"' in text and "没有快递员在这个网点工作" in text
    assert '<select id="depot" name="depot" required>' in text and 'id="depot-cash"' not in text
    english = browser.get("/console/depots/XX99/cash?lang=en").get_data(as_text=True)
    assert "No courier works out of this depot" in english and 'name="depot"' in english


def test_every_value_of_each_vocabulary_shown_has_its_words():
    """Each vocabulary the office pages show has a Chinese and an English word for every value (a new kind cannot
    reach a page raw), read from schemas.vocab itself."""
    shown = {"exception_kind": vocab.DISPATCH_EXCEPTIONS, "exception_status": vocab.EXCEPTION_STATUSES,
             "grade_reason": vocab.GRADE_REASONS, "violation": vocab.VIOLATION_CODES,
             "violation_status": vocab.VIOLATION_STATUSES, "severity": vocab.SEVERITIES,
             "attempt_outcome": vocab.CONTACT_OUTCOMES, "ledger_kind": vocab.LEDGER_KINDS,
             "payment_method": vocab.PAYMENT_METHODS, "task_status": vocab.TASK_STATUSES,
             "shift_status": vocab.SHIFT_STATUSES, "check_kind": vocab.CHECKLIST_KINDS,
             "staff_role": vocab.STAFF_ROLES, "vehicle_kind": vocab.VEHICLE_KINDS,
             "claim_rule": (claims.RULE_INSURED, claims.RULE_UNINSURED), "verify_method": vocab.VERIFY_METHODS,
             "item_condition": vocab.ITEM_CONDITIONS, "conflict_resolution": vocab.CONFLICT_RESOLUTIONS,
             "op_status": vocab.OP_LOG_STATUSES, "conflict_reason": vocab.CONFLICT_REASONS,
             "conflict_status": vocab.CONFLICT_STATUSES, "review_reason": vocab.REVIEW_REASONS,
             "window_outcome": vocab.WINDOW_OUTCOMES, "window_decider": vocab.WINDOW_DECIDERS,
             "appointment_via": vocab.APPOINTMENT_VIA, "scan_source": vocab.SCAN_SOURCES,
             "scan_note": vocab.SCAN_NOTES, "refusal_reason": vocab.REFUSAL_REASONS,
             "alternate_place": vocab.ALTERNATE_PLACES}
    assert {name: values for name, (values, _) in words.WORDS.items()} == shown
    for name, values in shown.items():
        for value in values:
            key = f"word.{name}.{value}"
            zh, en = _TEXT["zh"].get(key), _TEXT["en"].get(key)
            assert zh and en and zh != value, key
            assert re.search(r"[\u4e00-\u9fff]", zh), key  # Chinese words, not a copy of the English


def _wrong_number(client, make, courier):
    """A wrong number reported through the push path; the task and the queue's exception id."""
    device = Device(client, make.device(courier))
    task = make.task(courier=courier)
    device.push([device.op("appointment.contact", task["id"], {"outcome": "wrong_number"})])
    exception_id = client.get("/api/v1/dispatch/exceptions", query_string={"kind": "wrong_number"},
                              headers=make.headers("dispatcher")).json["items"][0]["id"]
    return task, exception_id


def test_the_queue_in_words_with_names_and_links(client, make, console_as):
    """Kinds and statuses in words (zh and en), the courier by name and number linking to their day, the waybill to
    the task's page; each cell labelled for the phone layout."""
    courier = make.courier(depot="SH01", name="Li Na")
    task, exception_id = _wrong_number(client, make, courier)
    browser = console_as("dispatcher")
    zh = browser.get("/console/exceptions").get_data(as_text=True)
    row = zh[zh.index(f'id="exception-{exception_id}"'):zh.index("</tr>", zh.index(f'id="exception-{exception_id}"'))]
    assert "电话号码错误" in row and "待处理" in row and "wrong_number" not in row
    assert f'href="/console/tasks/{task["id"]}">{task["waybill_no"]}</a>' in row
    courier_row = (f'href="/console/couriers/{courier["id"]}/day?date={local_date(utcnow()).isoformat()}">Li Na</a> '
                   f'<span class="muted">{courier["employee_no"]}</span>')
    assert courier_row in row and courier["id"] + "<" not in row
    assert row.count("data-label=") == 6 and 'style=' not in zh
    en = browser.get("/console/exceptions?lang=en").get_data(as_text=True)
    assert "Wrong phone number" in en and ">Open<" in en


def test_htmx_acknowledge_and_resolve_answer_with_the_row(client, make, console_as, csrf_of):
    """htmx posts with the header token: the answer is the row as it now stands (swapped in place); a refusal is
    shown in the row; without the token, refused; a plain form still goes back to the queue."""
    courier = make.courier(depot="SH01")
    _, exception_id = _wrong_number(client, make, courier)
    browser = console_as("dispatcher")
    token = csrf_of(browser, "/console/exceptions")
    htmx = {"HX-Request": "true", "X-CSRF-Token": token}
    assert browser.post(f"/console/exceptions/{exception_id}/acknowledge",
                        headers={"HX-Request": "true"}).status_code == 400
    acked = browser.post(f"/console/exceptions/{exception_id}/acknowledge", headers=htmx)
    row = acked.get_data(as_text=True)
    assert acked.status_code == 200
    assert f'<tr id="exception-{exception_id}"' in row and "已受理" in row and "<html" not in row
    assert f'id="ack-{exception_id}"' not in row and f'id="resolve-{exception_id}"' in row
    empty = browser.post(f"/console/exceptions/{exception_id}/resolve", headers=htmx, data={"note": ""})
    assert empty.status_code == 200 and 'role="alert"' in empty.get_data(as_text=True)
    done = browser.post(f"/console/exceptions/{exception_id}/resolve", headers=htmx, data={"note": "Called the sender"})
    row = done.get_data(as_text=True)
    assert "已解决" in row and "Called the sender" in row and f'id="resolve-{exception_id}"' not in row
    other = browser.post(f"/console/exceptions/{exception_id}/resolve", headers=htmx, data={"note": "Another"})
    assert "这条异常已用另一条说明解决过了。" in other.get_data(as_text=True)
    assert sorted(db.session.scalars(select(AuditEntry.action).where(AuditEntry.entity == "handover_exceptions"))) == [
        "exception.acknowledge", "exception.resolve"]
    plain = browser.post(f"/console/exceptions/{exception_id}/resolve", data={"csrf_token": token,
                                                                             "note": "Called the sender"})
    assert plain.status_code == 303  # the same note again: the same resolution, back to the queue


def test_a_courier_day_in_words(client, make, console_as):
    """A payment made outside a shift: the violation with its time and kind in words, the grade's reasons in words
    with their points, the ledger entries by kind, tasks linked to their pages, a contact attempt's outcome."""
    courier = make.courier(depot="SH01", name="Zhao Lei")
    device = Device(client, make.device(courier))
    today = local_date(utcnow()).isoformat()
    task = _pay(device, make, courier, 4990)
    _remit(client, make, courier, today, 4000)
    contact = make.task(courier=courier)
    device.push([device.op("appointment.contact", contact["id"], {"outcome": "no_answer"})])
    browser = console_as("dispatcher")
    zh = browser.get(f"/console/couriers/{courier['id']}/day?date={today}").get_data(as_text=True)
    violations = zh[zh.index('id="violations"'):zh.index('id="tasks"')]
    assert "未做班前检查就作业" in violations and "较重" in violations and "work_without_shift_check" not in zh
    assert re.search(r'data-label="时间">\d\d:\d\d<', violations)
    grade = zh[zh.index('id="grade"'):zh.index('id="violations"')]
    points = dict(client.application.config["GRADE_POINTS"])["major"]
    assert "违规" in grade and "1 次 未做班前检查就作业（较重）" in grade and f"扣 {points} 分" in grade
    assert "准时率" in grade and "on_time_rate" not in grade
    entries = zh[zh.index('id="entries"'):zh.index('id="shifts"')]
    assert "收款" in entries and "上缴" in entries and "现金" in entries and "¥40.00" in entries
    assert f'href="/console/tasks/{task["id"]}">{task["waybill_no"]}</a>' in zh
    assert "无人接听" in zh[zh.index('id="attempts"'):zh.index('id="entries"')]
    en = browser.get(f"/console/couriers/{courier['id']}/day?date={today}&lang=en").get_data(as_text=True)
    assert "Worked without a shift check" in en and f"-{points} points" in en and "Remittance" in en
