"""The console's task search (/console/tasks?q=): the API's search and filters, a page at a time, or as CSV."""
from flask import request, url_for
from marshmallow import ValidationError

from schemas.tasks import TASK_CSV_COLUMNS, TaskOut, TaskQuery
from schemas.vocab import TASK_STATUSES
from server import csvout
from server.exports import noted_export
from server.clock import local_date, utcnow
from server.console import bp, register_nav
from server.console.auth import flash_error, page, render
from server.console.board import BOARD_ROLES, courier_names
from server.console.i18n import register, t
from server.services import tasks as task_service

_FILTERS = ("q", "date", "courier_id", "status", "cursor", "format")

register({
    "zh": {"search.title": "任务搜索", "search.nav": "任务", "search.q": "运单号、姓氏或手机尾号",
           "search.date": "日期", "search.courier": "快递员", "search.any_courier": "全部快递员",
           "search.status": "状态", "search.any_status": "全部状态", "search.submit": "搜索",
           "search.csv": "下载 CSV", "search.next": "下一页", "search.none": "没有找到任务。",
           "search.results": "结果", "search.today": "今天（{day}）的任务；输入搜索词时不选日期即搜索所有日期。", "search.waybill": "运单号", "search.recipient": "收件人", "search.phone": "电话",
           "search.address": "地址", "search.window": "时段", "search.unassigned": "未分配"},
    "en": {"search.title": "Task search", "search.nav": "Tasks",
           "search.q": "Waybill, surname or phone's last 4",
           "search.date": "Date", "search.courier": "Courier", "search.any_courier": "Any courier",
           "search.status": "Status", "search.any_status": "Any status", "search.submit": "Search",
           "search.csv": "Download CSV", "search.next": "Next page", "search.none": "No tasks found.",
           "search.results": "Results",
           "search.today": "Today's ({day}) tasks; a search term with no date chosen searches every date.", "search.waybill": "Waybill", "search.recipient": "Recipient",
           "search.phone": "Phone", "search.address": "Address", "search.window": "Window",
           "search.unassigned": "unassigned"},
})
register_nav("console.tasks", "search.nav", BOARD_ROLES)


def _query() -> tuple[dict, dict | None, str | None]:
    """The form as sent (empty fields dropped), as the API's TaskQuery reads it (None if it refuses it: the refusal
    is shown on the page), and the day shown when nothing is asked: today's tasks, the date field left empty, so a
    search term typed next (a phone's last four, an older waybill) searches every date unless a date is chosen."""
    form = {name: request.args[name] for name in _FILTERS if request.args.get(name, "").strip()}
    today = None
    if not set(form) - {"format", "cursor"}:
        today = local_date(utcnow()).isoformat()
    try:
        return form, TaskQuery().load({**form, **({"date": today} if today else {})}), today
    except ValidationError as error:
        flash_error("; ".join(f"{_label(name)}: {' '.join(messages)}" for name, messages in error.messages.items()))
        return form, None, today


def _label(name: str) -> str:
    """A field's label on the page, for a refusal naming it."""
    return t(f"search.{'courier' if name == 'courier_id' else name}")


@bp.get("/tasks")
@page(*BOARD_ROLES)
def tasks():
    """Search tasks as the API does (services.tasks.get_all), a page at a time; ?format=csv downloads every
    matching row the way the API's CSV does. Customer data shown is noted for leak detection."""
    form, query, today = _query()
    found = None
    if query is not None:
        query["service_date"] = query.pop("date")
        if query.pop("format") == "csv":
            filters = {k: v for k, v in query.items() if k not in ("cursor", "limit")}
            rows = csvout.every_row(lambda **page_args: task_service.get_all(**filters, **page_args),
                                    cursor=query["cursor"])
            return csvout.respond(rows, schema=TaskOut(), columns=TASK_CSV_COLUMNS, filename="tasks.csv",
                                  what="console_tasks")
        found = task_service.get_all(**query)
        noted_export("console_tasks", len(found["items"]))
    plain = {k: v for k, v in form.items() if k not in ("cursor", "format")} | ({"date": today} if today else {})
    return render("console/search.html", form=form, today=today, found=found, names=courier_names(), statuses=TASK_STATUSES,
                  csv_url=url_for("console.tasks", **plain, format="csv"),
                  next_url=url_for("console.tasks", **plain, cursor=found["next_cursor"])
                  if found and found["next_cursor"] else None)

