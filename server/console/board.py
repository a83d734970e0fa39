"""The console's board (/console): the depot's day by appointment state, its columns re-fetched every 30 s."""
from flask import g, request
from marshmallow import ValidationError

from schemas.appointments import BoardQuery
from server.clock import local_date, utcnow
from server.console import bp, register_nav
from server.console.auth import flash_error, page, render
from server.console.home import CONSOLE_ROLES
from server.console.i18n import register
from server.services import appointments, couriers

BOARD_ROLES = ("dispatcher", "admin", "quality")  # the API's board is the office's (OFFICE)
# The columns: the appointment states dispatch acts on, as the API's board decides them (appointments.state).
COLUMNS = ("unconfirmed", "confirmed", "at_risk", "late", "missed")
PER_COLUMN = 50
REFRESH_SECONDS = 30

register({
    "zh": {"board.title": "今日看板", "board.nav": "看板", "board.day": "日期", "board.courier": "快递员",
           "board.all_couriers": "全部快递员", "board.show": "显示", "board.refreshed": "更新于",
           "board.refresh": "刷新", "board.auto": "每 30 秒自动刷新", "board.none": "无",
           "board.more": "还有更多：在任务搜索中查看", "board.window": "时段", "board.waybill": "运单号",
           "board.unassigned": "未分配", "board.count": "{n} 单",
           "board.state.unconfirmed": "未确认", "board.state.confirmed": "已确认", "board.state.at_risk": "有风险",
           "board.state.late": "迟到", "board.state.missed": "错过"},
    "en": {"board.title": "Today's board", "board.nav": "Board", "board.day": "Day", "board.courier": "Courier",
           "board.all_couriers": "All couriers", "board.show": "Show", "board.refreshed": "Refreshed at",
           "board.refresh": "Refresh", "board.auto": "Refreshes itself every 30 s", "board.none": "None",
           "board.more": "More: see them in the task search", "board.window": "Window", "board.waybill": "Waybill",
           "board.unassigned": "unassigned", "board.count": "{n} tasks",
           "board.state.unconfirmed": "Unconfirmed", "board.state.confirmed": "Confirmed",
           "board.state.at_risk": "At risk", "board.state.late": "Late", "board.state.missed": "Missed"},
})
register_nav("console.home", "board.nav", BOARD_ROLES)


def courier_names() -> dict[str, str]:
    """Every courier's name by id (the filters' choices, the names shown beside tasks)."""
    return {c.id: c.name for c in couriers.get_all(active=None, cursor=None, limit=500)["items"]}


def _filters() -> dict:
    """The board's day and courier, read by the API board's own schema; today (the depot's) by default."""
    raw = {name: value for name, value in request.args.items() if name in ("date", "courier_id") and value}
    try:
        args = BoardQuery().load(raw)
    except ValidationError as error:
        flash_error("; ".join(f"{name}: {' '.join(messages)}" for name, messages in error.messages.items()))
        args = {"date": None, "courier_id": None}
    return {"day": args["date"] or local_date(utcnow()), "courier_id": args["courier_id"]}


def _board() -> dict:
    """What the board shows: each state's first tasks on the day (appointments.board, as the API answers it)."""
    filters = _filters()
    columns = []
    for state in COLUMNS:
        found = appointments.board(day=filters["day"], state_filter=state, courier_id=filters["courier_id"],
                                   cursor=None, limit=PER_COLUMN)
        columns.append({"state": state, "items": found["items"], "more": found["next_cursor"] is not None})
    return {**filters, "columns": columns, "names": courier_names(), "now": utcnow(),
            "refresh_seconds": REFRESH_SECONDS}


@bp.get("/", endpoint="home")
@page(*CONSOLE_ROLES)
def board():
    """The console's first page: the board for the office; for a role without one, the pages it may open."""
    if g.staff.role not in BOARD_ROLES:
        return render("console/home.html")
    return render("console/board.html", **_board())


@bp.get("/board/columns")
@page(*BOARD_ROLES)
def board_columns():
    """The board's columns alone: what htmx swaps in every 30 s."""
    return render("console/board_columns.html", **_board())
