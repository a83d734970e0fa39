"""The office's console pages: the exceptions queue, a courier's day, a depot's cash, and their CSV downloads.

Each calls the services the API calls (server/api/exceptions.py, server/api/office.py); the CSVs are the API's.
"""
from datetime import date

from flask import g, redirect, request, url_for
from marshmallow import ValidationError

from server import csvout
from schemas.handover import EXCEPTION_CSV_COLUMNS as EXCEPTION_COLUMNS
from schemas.ledger import LEDGER_CSV_COLUMNS as LEDGER_COLUMNS
from server.clock import local_date, utcnow
from server.console import bp, register_nav, words  # noqa: F401  (words: the vocabularies' words)
from server.console.auth import flash_error, page, render
from server.console.i18n import register
from server.errors import DomainError
from schemas.handover import ExceptionOut
from schemas.ledger import LedgerEntryOut
from schemas.office import DayQuery
from schemas.vocab import EXCEPTION_STATUSES
from server.exports import noted_export
from server.services import exception_queue, ledger, office

DISPATCH = ("dispatcher", "admin")
OFFICE = ("dispatcher", "admin", "quality")

register({
    "zh": {"office.exceptions": "异常队列", "office.day": "快递员当日", "office.depot_cash": "网点现金",
           "office.status": "状态", "office.all": "全部", "office.date": "日期", "office.kind": "类型",
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
           "office.bad_date": "日期格式不对（YYYY-MM-DD）。", "office.status_col": "状态", "office.amount": "金额",
           "office.note_needed": "请填写处理说明（不超过 500 字）。", "office.points": "扣 {points} 分",
           "office.no_points": "不扣分", "office.severity": "程度", "office.time": "时间", "office.entries": "台账",
           "office.method": "方式", "office.van": "车辆", "office.odometer": "里程 {start} → {end} km",
           "office.failed_items": "未通过", "office.passed": "全部通过", "office.resolution": "处理说明",
           "office.on_time_detail": "准时 {kept}/{decided}，目标 {target}%", "office.on_time_uncounted": "预约太少，不计",
           "office.low_detail": "{low}/{ratings} 个低分评价", "office.violation_detail": "{count} 次 {what}（{severity}）",
           "office.count": "{n} 次", "office.next": "下一页", "office.flagged": "标记", "office.shift": "班次",
           "office.flag.far_from_vehicle": "检查时不在车旁", "office.flag.odometer_lower": "里程读数低于记录",
           "office.flag.stale_acknowledgement": "确认的是旧缺陷记录",
           "err_exception_already_resolved": "这条异常已用另一条说明解决过了。",
           "err_review_decides": "这是待复核的预约时段：请在运单页面做出复核结论。",
           "err_exception_not_found": "找不到这条异常。",
           "err_depot_not_found": "没有快递员在这个网点工作：请从列表里选择网点。",
           "office.no_depots": "还没有快递员登记网点：请在快递员资料里填写网点。"},
    "en": {"office.exceptions": "Exceptions", "office.day": "Courier's day", "office.depot_cash": "Depot cash",
           "office.status": "Status", "office.all": "All", "office.date": "Date", "office.kind": "Kind",
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
           "office.bad_date": "Not a date (YYYY-MM-DD).", "office.status_col": "Status", "office.amount": "Amount",
           "office.note_needed": "Write a resolution note (at most 500 characters).", "office.points": "-{points} points",
           "office.no_points": "no points off", "office.severity": "Severity", "office.time": "Time",
           "office.entries": "Ledger", "office.method": "Method", "office.van": "Van",
           "office.odometer": "odometer {start} → {end} km", "office.failed_items": "Failed",
           "office.passed": "all passed", "office.resolution": "Resolution note",
           "office.on_time_detail": "{kept} of {decided} on time, target {target}%",
           "office.on_time_uncounted": "too few appointments to count", "office.low_detail": "{low} of {ratings} ratings low",
           "office.violation_detail": "{count} × {what} ({severity})", "office.count": "{n}×", "office.next": "Next page",
           "office.flagged": "Flagged", "office.shift": "Shift", "office.flag.far_from_vehicle": "checked away from the van",
           "office.flag.odometer_lower": "odometer below the van's record",
           "office.flag.stale_acknowledgement": "acknowledged an old defect list",
           "err_exception_already_resolved": "This exception was resolved with another note.",
           "err_review_decides": "This is a window under review: decide it on the task's page.",
           "err_exception_not_found": "No such exception.",
           "err_depot_not_found": "No courier works out of this depot: choose one from the list.",
           "office.no_depots": "No courier has a depot yet: set one on the courier's record."},
})
register_nav("console.exceptions", "office.exceptions", OFFICE)
register_nav("console.depot_cash", "office.depot_cash", OFFICE)


def _day(name: str = "date", *, default_today: bool = True) -> date | None:
    """A depot-local date from the query (today when absent); a bad one (or one out of the API's years) is shown
    and today used."""
    value = request.args.get(name, "").strip()
    if not value:
        return local_date(utcnow()) if default_today else None
    try:
        return DayQuery().load({"date": value})["date"]  # the API's date: its form and its years
    except ValidationError:
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
    queue = office.exceptions(cursor=cursor, limit=50, **filters)
    return render("console/office_exceptions.html", queue=queue, filters=filters, statuses=EXCEPTION_STATUSES,
                  may_act=g.staff.role in DISPATCH)


def _htmx() -> bool:
    """Whether htmx sent the form (it swaps the answer in for the row; a plain form gets the queue back)."""
    return request.headers.get("HX-Request") == "true"


def _row(exception_id: int, error: str | None = None):
    """One row of the queue, as it stands now, for htmx to swap in (a refusal shown in the row)."""
    row = exception_queue.get(exception_id=exception_id)
    return render("console/_office_exception_row.html", e=row, couriers=office.couriers_of([row]),
                  may_act=g.staff.role in DISPATCH, row_error=error)


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
    return _row(exception_id) if _htmx() else _back()


@bp.post("/exceptions/<int:exception_id>/resolve")
@page(*DISPATCH)
def resolve(exception_id):
    """Resolve with a note (audited); a refusal is shown on the queue."""
    from schemas.handover import ExceptionResolveIn
    from marshmallow import ValidationError

    try:
        data = ExceptionResolveIn().load({"note": request.form.get("note", "")})
        exception_queue.resolve(actor=g.actor, exception_id=exception_id, note=data["note"])
    except (ValidationError, DomainError) as error:
        if isinstance(error, DomainError) and error.status == 404:
            raise  # no such exception: the 404 page, as acknowledging it
        message = _text("office.note_needed") if isinstance(error, ValidationError) else _refusal(error)
        if _htmx():
            return _row(exception_id, message)
        flash_error(message)
        return exceptions()
    return _row(exception_id) if _htmx() else _back()


def _refusal(error: DomainError) -> str:
    """A service's refusal in the page language (its code's words if registered, else its own message)."""
    from server.console.i18n import has_text
    key = f"err_{error.code}"
    return _text(key) if has_text(key) else error.detail


@bp.get("/couriers/<courier_id>/day")
@page(*OFFICE)
def courier_day(courier_id):
    """A courier's day: tasks, attempts, cash to the fen, violations, grade and reasons, shifts and checks."""
    day = office.courier_day(courier_id=courier_id, day=_day())
    noted_export("courier_day", len(day["tasks"]))
    return render("console/office_day.html", day=day, waybills={task.id: task.waybill_no for task in day["tasks"]})


@bp.get("/depots/cash")
@bp.get("/depots/<depot>/cash")
@page(*OFFICE)
def depot_cash(depot=None):
    """Every courier of a depot on a day, with remittances and the depot's totals; the depot is chosen from those
    couriers work out of (the first when none is asked); an unknown one is refused on the page, the form kept."""
    depots = ledger.depots()
    depot = depot or request.args.get("depot", "").strip() or (depots[0] if depots else None)
    day = _day()
    cash = None
    if depot:
        try:
            cash = ledger.depot_cash(depot=depot, day=day)
        except DomainError as error:  # shown like the search's refusals: the page, its form, the message
            flash_error(error)
    elif not depots:
        flash_error(_text("office.no_depots"))
    return render("console/office_depot_cash.html", cash=cash, depot=depot, depots=depots, day=day)


@bp.get("/ledger.csv")
@page(*OFFICE)
def ledger_csv():
    """A day's ledger entries (of a depot or a courier) as the API's CSV."""
    filters = {"day": _day(), "depot": request.args.get("depot") or None,
               "courier_id": request.args.get("courier_id") or None}
    rows = csvout.every_row(lambda cursor, limit: ledger.entries(
        cursor=int(cursor) if cursor else None, limit=limit, **filters))
    return csvout.respond(rows, schema=LedgerEntryOut(), columns=LEDGER_COLUMNS, filename="ledger.csv", what="ledger")


@bp.app_template_global()
def office_task_href(task_id: str) -> str:
    """A task's page in the console (by its path while the task page is not among the console's routes)."""
    from flask import current_app
    if "console.task_page" in current_app.view_functions:
        return url_for("console.task_page", task_id=task_id)
    return f"{bp.url_prefix}/tasks/{task_id}"
