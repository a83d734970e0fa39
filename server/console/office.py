"""The office's console pages: the exceptions queue, a courier's day, a depot's cash, and their CSV downloads.

Each calls the services the API calls (server/api/exceptions.py, server/api/office.py); the CSVs are the API's.
"""
from datetime import date

from flask import g, redirect, request, url_for

from server import csvout
from server.api.exceptions import CSV_COLUMNS as EXCEPTION_COLUMNS
from server.api.office import LEDGER_COLUMNS
from server.clock import local_date, utcnow
from server.console import bp, register_nav
from server.console.auth import flash_error, page, render
from server.console.i18n import register
from server.errors import DomainError
from schemas.handover import ExceptionOut
from schemas.ledger import LedgerEntryOut
from schemas.vocab import EXCEPTION_STATUSES
from server.api.leaks import noted_export
from server.services import exception_queue, ledger, office

DISPATCH = ("dispatcher", "admin")
OFFICE = ("dispatcher", "admin", "quality")

register({
    "zh": {"office.exceptions": "异常队列", "office.day": "快递员当日", "office.depot_cash": "网点现金",
           "office.status": "状态", "office.status.open": "待处理", "office.status.acknowledged": "已受理",
           "office.status.resolved": "已解决", "office.all": "全部", "office.date": "日期", "office.kind": "类型",
           "office.task": "运单", "office.courier": "快递员", "office.occurred": "发生时间", "office.actions": "操作",
           "office.acknowledge": "受理", "office.resolve": "解决", "office.note": "处理说明",
           "office.filter": "筛选", "office.csv": "下载 CSV", "office.none": "没有符合条件的异常。",
           "office.resolved_by": "解决人", "office.courier_id": "快递员编号", "office.show": "查看",
           "office.tasks": "任务", "office.attempts": "联系记录", "office.cash": "现金", "office.collected": "已收现金",
           "office.collected_qr": "扫码收款", "office.remitted": "已上缴", "office.corrections": "更正",
           "office.difference": "差额", "office.violations": "违规", "office.grade": "等级", "office.score": "分数",
           "office.reasons": "原因", "office.shifts": "班次与车辆检查", "office.checks": "检查",
           "office.depot": "网点", "office.totals": "合计", "office.remittances": "上缴记录",
           "office.ledger_csv": "下载台账 CSV", "office.waybill": "运单号", "office.outcome": "结果",
           "office.code": "代码", "office.started": "开始", "office.ended": "结束", "office.empty": "无",
           "office.bad_date": "日期格式不对（YYYY-MM-DD）。", "office.status_col": "状态", "office.amount": "金额"},
    "en": {"office.exceptions": "Exceptions", "office.day": "Courier's day", "office.depot_cash": "Depot cash",
           "office.status": "Status", "office.status.open": "Open", "office.status.acknowledged": "Acknowledged",
           "office.status.resolved": "Resolved", "office.all": "All", "office.date": "Date", "office.kind": "Kind",
           "office.task": "Waybill", "office.courier": "Courier", "office.occurred": "Occurred",
           "office.actions": "Actions", "office.acknowledge": "Acknowledge", "office.resolve": "Resolve",
           "office.note": "Resolution note", "office.filter": "Filter", "office.csv": "Download CSV",
           "office.none": "No exceptions match.", "office.resolved_by": "Resolved by",
           "office.courier_id": "Courier id", "office.show": "Show", "office.tasks": "Tasks",
           "office.attempts": "Contact attempts", "office.cash": "Cash", "office.collected": "Cash collected",
           "office.collected_qr": "QR collected", "office.remitted": "Remitted", "office.corrections": "Corrections",
           "office.difference": "Difference", "office.violations": "Violations", "office.grade": "Grade",
           "office.score": "Score", "office.reasons": "Reasons", "office.shifts": "Shifts and van checks",
           "office.checks": "Checks", "office.depot": "Depot", "office.totals": "Totals",
           "office.remittances": "Remittances", "office.ledger_csv": "Download ledger CSV",
           "office.waybill": "Waybill", "office.outcome": "Outcome", "office.code": "Code",
           "office.started": "Started", "office.ended": "Ended", "office.empty": "None",
           "office.bad_date": "Not a date (YYYY-MM-DD).", "office.status_col": "Status", "office.amount": "Amount"},
})
register_nav("console.exceptions", "office.exceptions", OFFICE)
register_nav("console.depot_cash", "office.depot_cash", OFFICE)


def _day(name: str = "date", *, default_today: bool = True) -> date | None:
    """A depot-local date from the query (today when absent); a bad one is shown and today used."""
    value = request.args.get(name, "").strip()
    if not value:
        return local_date(utcnow()) if default_today else None
    try:
        return date.fromisoformat(value)
    except ValueError:
        flash_error(_text("office.bad_date"))
        return local_date(utcnow()) if default_today else None


def _text(key: str) -> str:
    """A registered text in the page language."""
    from server.console.i18n import t
    return t(key)


def _queue_filters() -> dict:
    """The queue's filters from the query: a status (open by default), a day (every day when absent)."""
    status = request.args.get("status", "open")
    return {"status": status if status in EXCEPTION_STATUSES else None, "day": _day(default_today=False)}


@bp.get("/exceptions")
@page(*OFFICE)
def exceptions():
    """The exceptions queue: acknowledge, resolve with a note; oldest first."""
    filters = _queue_filters()
    cursor = request.args.get("cursor", type=int)
    queue = exception_queue.get_all(cursor=cursor, limit=50, **filters)
    return render("console/office_exceptions.html", queue=queue, filters=filters, statuses=EXCEPTION_STATUSES,
                  may_act=g.staff.role in DISPATCH)


@bp.get("/exceptions.csv")
@page(*OFFICE)
def exceptions_csv():
    """The queue's rows for the filters, as the API's CSV."""
    filters = _queue_filters()
    rows = csvout.every_row(lambda cursor, limit: exception_queue.get_all(
        cursor=int(cursor) if cursor else None, limit=limit, **filters))
    return csvout.respond(rows, schema=ExceptionOut(), columns=EXCEPTION_COLUMNS, filename="exceptions.csv",
                          what="exceptions")


def _back():
    """Back to the queue with the filters the form came from (post, redirect, get)."""
    return redirect(url_for("console.exceptions", **{k: v for k, v in request.args.items() if k in ("status", "date")}),
                    code=303)


@bp.post("/exceptions/<int:exception_id>/acknowledge")
@page(*DISPATCH)
def acknowledge(exception_id):
    """Acknowledge an exception (audited), then back to the queue."""
    exception_queue.acknowledge(actor=g.actor, exception_id=exception_id)
    return _back()


@bp.post("/exceptions/<int:exception_id>/resolve")
@page(*DISPATCH)
def resolve(exception_id):
    """Resolve with a note (audited); a refusal is shown on the queue."""
    from schemas.handover import ExceptionResolveIn
    from marshmallow import ValidationError

    try:
        data = ExceptionResolveIn().load({"note": request.form.get("note", "")})
        exception_queue.resolve(actor=g.actor, exception_id=exception_id, note=data["note"])
    except ValidationError:
        flash_error(_text("office.note"))
        return exceptions()
    except DomainError as error:
        flash_error(error)
        return exceptions()
    return _back()


@bp.get("/couriers/<courier_id>/day")
@page(*OFFICE)
def courier_day(courier_id):
    """A courier's day: tasks, attempts, cash to the fen, violations, grade and reasons, shifts and checks."""
    day = office.courier_day(courier_id=courier_id, day=_day())
    noted_export("courier_day", len(day["tasks"]))
    return render("console/office_day.html", day=day)


@bp.get("/depots/cash")
@bp.get("/depots/<depot>/cash")
@page(*OFFICE)
def depot_cash(depot=None):
    """Every courier of a depot on a day, with remittances and the depot's totals."""
    depot = depot or request.args.get("depot", "").strip() or None
    day = _day()
    cash = ledger.depot_cash(depot=depot, day=day) if depot else None
    return render("console/office_depot_cash.html", cash=cash, depot=depot, day=day)


@bp.get("/ledger.csv")
@page(*OFFICE)
def ledger_csv():
    """A day's ledger entries (of a depot or a courier) as the API's CSV."""
    filters = {"day": _day(), "depot": request.args.get("depot") or None,
               "courier_id": request.args.get("courier_id") or None}
    rows = csvout.every_row(lambda cursor, limit: ledger.entries(
        cursor=int(cursor) if cursor else None, limit=limit, **filters))
    return csvout.respond(rows, schema=LedgerEntryOut(), columns=LEDGER_COLUMNS, filename="ledger.csv", what="ledger")
