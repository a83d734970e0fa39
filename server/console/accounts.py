"""Console passwords: everyone changes their own (/console/account); an admin sets another's
(/console/admin/staff/<id>/password, endpoint `console.staff_password`, linked from the staff list)."""
from flask import current_app, g, redirect, request, url_for

from server.auth import check_failure_budget, client_key, console_login_budgets, record_failure
from server.console import bp, register_nav
from server.console.auth import flash_error, page, render
from server.console.home import CONSOLE_ROLES
from server.console.i18n import register, t
from server.errors import DomainError, TooManyRequests
from server.services import staff as staff_service

register({
    "zh": {
        "nav.account": "我的账户", "account.title": "我的账户", "account.change": "修改密码",
        "account.current": "当前密码", "account.new": "新密码", "account.again": "再次输入新密码",
        "account.submit": "修改密码", "account.hint": "至少 {minimum} 个字符。修改后，你在其他设备上的登录会退出。",
        "account.done": "密码已修改。你在其他设备上的登录已退出。",
        "account.mismatch": "两次输入的新密码不一样。", "account.wrong_current": "当前密码不正确。",
        "account.too_short": "至少需要 {minimum} 个字符。", "account.too_long": "最多 {maximum} 个字符。",
        "account.blank": "不能只有空格。",
        "staffpw.title": "设置密码", "staffpw.for": "为 {username}（{role}）设置调度台密码",
        "staffpw.hint": "至少 {minimum} 个字符。设置后，此人所有的调度台登录都会退出。",
        "staffpw.submit": "设置密码", "staffpw.done": "已为 {username} 设置新密码，此人的调度台登录已全部退出。",
        "staffpw.inactive": "此账户已停用，设置密码后仍不能登录。",
    },
    "en": {
        "nav.account": "My account", "account.title": "My account", "account.change": "Change your password",
        "account.current": "Current password", "account.new": "New password", "account.again": "New password again",
        "account.submit": "Change password", "account.hint": "At least {minimum} characters. Your other signed-in "
        "devices are signed out.",
        "account.done": "Your password is changed. Your other devices are signed out.",
        "account.mismatch": "The two new passwords differ.", "account.wrong_current": "The current password is wrong.",
        "account.too_short": "At least {minimum} characters.", "account.too_long": "At most {maximum} characters.",
        "account.blank": "Not only spaces.",
        "staffpw.title": "Set a password", "staffpw.for": "Set the console password of {username} ({role})",
        "staffpw.hint": "At least {minimum} characters. Every console session of theirs ends.",
        "staffpw.submit": "Set password", "staffpw.done": "{username} has a new password; their console sessions "
        "have ended.",
        "staffpw.inactive": "This account is inactive: it cannot sign in even with a password.",
    },
})

register_nav("console.account", "nav.account", CONSOLE_ROLES)

ADMIN = ("admin",)
# The form's fields, as the page labels them (a refusal names the field it is about).
_LABELS = {"current_password": "account.current", "password": "account.new", "password_again": "account.again"}


def _minimum() -> int:
    """The shortest password the service takes (FIELDOPS_CONSOLE_PASSWORD_MIN_LENGTH)."""
    return current_app.config["CONSOLE_PASSWORD_MIN_LENGTH"]


def _refuse(field: str, message: str) -> dict:
    """Show a refusal naming its field; the field's id, for the template to mark it invalid."""
    flash_error(f"{t(_LABELS[field])}: {message}")
    return {field: message}


def _password_refusal(error: DomainError) -> dict:
    """The service's refusal of a new password, in the page's words, on the field it names."""
    messages = {"password_too_short": t("account.too_short", minimum=_minimum()),
                "password_too_long": t("account.too_long", maximum=staff_service.PASSWORD_MAX_LENGTH),
                "password_blank": t("account.blank"), "current_password_wrong": t("account.wrong_current")}
    field = next(iter(getattr(error, "fields", None) or {"password": None}))
    return _refuse(field if field in _LABELS else "password", messages.get(error.code, error.detail))


def _new_twice() -> tuple[str, dict]:
    """The new password from the form, and a refusal if it was not typed the same twice."""
    password = request.form.get("password", "")
    if password != request.form.get("password_again", ""):
        return password, _refuse("password_again", t("account.mismatch"))
    return password, {}


@bp.get("/account")
@page(*CONSOLE_ROLES)
def account():
    """The signed-in user's account: change their own password."""
    return render("console/account.html", invalid={}, done=False, minimum=_minimum())


@bp.post("/account")
@page(*CONSOLE_ROLES)
def account_submit():
    """Change one's own password: the current one (a wrong one counts as a failed sign-in), the new one twice.
    The other sessions end; this one goes on."""
    current = request.form.get("current_password", "")
    password, invalid = _new_twice()
    status = 422
    if not invalid:
        budgets = console_login_budgets(client_key("console-login"), g.staff.username)
        try:
            check_failure_budget(budgets)
            staff_service.change_own_password(actor=g.actor, current=current, password=password,
                                              keep_session_id=g.console_session.id)
            return render("console/account.html", invalid={}, done=True, minimum=_minimum())
        except TooManyRequests as exc:
            g.problem_code = exc.code
            flash_error(exc)
            return render("console/account.html", status=429, invalid={}, done=False,
                          minimum=_minimum())[0], 429, exc.headers
        except DomainError as exc:
            if exc.code == "current_password_wrong":
                try:
                    record_failure(budgets, "wrong current password on the console's account page")
                except TooManyRequests as spent:
                    g.problem_code, status = spent.code, 429
            invalid = _password_refusal(exc)
    return render("console/account.html", status=status, invalid=invalid, done=False, minimum=_minimum())


def _own_page(staff_id: str):
    """An admin's own password is changed on the account page (the current one asked, this session kept)."""
    return redirect(url_for("console.account"), code=303) if staff_id == g.staff.id else None


@bp.get("/admin/staff/<staff_id>/password")
@page(*ADMIN)
def staff_password(staff_id: str):
    """An admin sets another staff user's console password: the form."""
    user = staff_service.get(staff_id=staff_id)
    return _own_page(user.id) or render("console/staff_password.html", user=user, invalid={}, done=False,
                                        minimum=_minimum())


@bp.post("/admin/staff/<staff_id>/password")
@page(*ADMIN)
def staff_password_submit(staff_id: str):
    """Set it (typed twice); every console session of theirs ends."""
    user = staff_service.get(staff_id=staff_id)
    if own := _own_page(user.id):
        return own
    password, invalid = _new_twice()
    if not invalid:
        try:
            user = staff_service.set_password(actor=g.actor, staff_id=user.id, password=password)
            return render("console/staff_password.html", user=user, invalid={}, done=True, minimum=_minimum())
        except DomainError as exc:
            if exc.status == 404:
                raise
            invalid = _password_refusal(exc)
    return render("console/staff_password.html", status=422, user=user, invalid=invalid, done=False,
                  minimum=_minimum())
