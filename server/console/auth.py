"""The console's sign-in: password login, server-side sessions, roles per page, CSRF on every post, headers.

A page is `@bp.get(...)` + `@page("dispatcher", "admin")`; inside, `g.actor` is the API's Actor and `g.staff` the
StaffUser. Every POST carries the session's CSRF token (`{{ csrf_field() }}` in a form, header X-CSRF-Token from
htmx), or it is refused before its view runs.
"""
import functools
import hashlib
import hmac
import logging
import re
import secrets
from urllib.parse import urlsplit

from flask import current_app, g, redirect, render_template, request, url_for
from markupsafe import Markup, escape
from werkzeug.exceptions import HTTPException

from server.auth import Actor, check_failure_budget, client_key, console_login_budgets, record_failure
from server.console import bp, nav_for
from server.console.i18n import (LANG_COOKIE, chosen_language, has_text, item_label, language, local_time, money,
                                 register, t)
from server.errors import DomainError, Forbidden, TooManyRequests, apply_keep, http_error_code
from server.services import staff as staff_service

log = logging.getLogger(__name__)

SESSION_COOKIE = "fo_console"
LOGIN_COOKIE = "fo_console_login"  # the sign-in form's CSRF nonce, before there is a session
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
_NONCE = re.compile(r"[A-Za-z0-9_-]{22,64}")
# Scripts, styles, images and requests from this site only; no inline script or style, no frames, no plugins.
CONSOLE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")

register({
    "zh": {
        "console": "调度台", "login.title": "登录调度台", "login.username": "用户名", "login.password": "密码",
        "login.submit": "登录", "login.failed": "用户名或密码不正确。", "logout": "退出登录",
        "signed_in_as": "当前用户", "switch_lang": "English", "nav": "导航", "skip": "跳到正文",
        "err_forbidden": "你的角色不能打开这个页面。", "err_csrf_failed": "页面已过期，请刷新后再提交。",
        "err_rate_limited": "失败次数太多，请稍后再试。", "err_not_found": "找不到这个页面或记录。",
        "err_other": "出了点问题，请稍后再试。", "error.title": "无法完成", "forbidden.title": "没有权限",
        "back_home": "返回首页",
        "role.admin": "管理员", "role.dispatcher": "调度员", "role.quality": "质检", "role.maintenance": "车辆维护",
        "role.integration": "系统对接",
    },
    "en": {
        "console": "Dispatch console", "login.title": "Sign in to the console", "login.username": "Username",
        "login.password": "Password", "login.submit": "Sign in", "login.failed": "Wrong username or password.",
        "logout": "Sign out", "signed_in_as": "Signed in as", "switch_lang": "中文", "nav": "Navigation",
        "skip": "Skip to content",
        "err_forbidden": "Your role cannot open this page.", "err_csrf_failed": "This page has expired; reload it "
        "and submit again.", "err_rate_limited": "Too many failed attempts; please wait and try again.",
        "err_not_found": "No such page or record.", "err_other": "Something went wrong; please try again later.",
        "error.title": "Could not do that", "forbidden.title": "Not allowed", "back_home": "Back to the home page",
        "role.admin": "Admin", "role.dispatcher": "Dispatcher", "role.quality": "Quality", "role.maintenance":
        "Maintenance", "role.integration": "Integration",
    },
})


class CsrfFailed(DomainError):
    """A console post without the token of its session (or of the sign-in form)."""

    status, code, title = 400, "csrf_failed", "Bad request"


# --- the session of each request ------------------------------------------------------------------------------

@bp.before_request
def _load_session():
    """Find the request's console session; refuse a post without its CSRF token before any view runs."""
    g.console_errors = []
    session = staff_service.lookup_session(secret=request.cookies.get(SESSION_COOKIE))
    g.console_session, g.staff = session, session.staff if session else None
    g.pop("actor", None)
    g.pop("new_login_nonce", None)
    if session is not None:
        g.actor = Actor(kind="staff", id=session.staff.id, role=session.staff.role)
    if request.method != "POST":
        return None
    if request.endpoint == "console.login_submit":
        expected = _login_csrf(request.cookies.get(LOGIN_COOKIE, ""))
    elif session is None:
        return _to_login()  # signed out (or idle too long) while the form was open: sign in again
    else:
        expected = session.csrf_token
    submitted = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    if expected is None or not hmac.compare_digest(submitted.encode(), expected.encode()):
        raise CsrfFailed("The form's token does not match this session.")
    return None


def _login_csrf(nonce: str) -> str | None:
    """The sign-in form's token: an HMAC of the browser's nonce cookie (double submit), None without one."""
    if not _NONCE.fullmatch(nonce):
        return None
    return hmac.new(current_app.config["SECRET_KEY"].encode(), f"console-login:{nonce}".encode(),
                    hashlib.sha256).hexdigest()


def _login_nonce() -> str:
    """This browser's sign-in nonce: the cookie's, or a new one set on the answer."""
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not _NONCE.fullmatch(nonce):
        nonce = g.new_login_nonce = secrets.token_urlsafe(24)
    return nonce


def csrf_token() -> str:
    """The CSRF token forms and htmx send on this page."""
    session = g.get("console_session")
    return session.csrf_token if session is not None else _login_csrf(_login_nonce())


def csrf_field() -> Markup:
    """The hidden form field carrying the CSRF token (every console form includes it)."""
    return Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(csrf_token())}">')


def _safe_next(target: str | None) -> str | None:
    """A console path to return to after signing in; anything else (another site, //host, control characters that
    cannot be in a Location header) is dropped."""
    if not target or any(ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/console") or target.startswith("//") \
            or "\\" in target:
        return None
    return target


def _to_login():
    """Send a signed-out browser to the sign-in form (htmx: the whole page, not a fragment)."""
    target = url_for("console.login", next=request.full_path.rstrip("?") if request.method == "GET" else None)
    if request.headers.get("HX-Request"):
        return "", 204, {"HX-Redirect": target}
    return redirect(target, code=303)


def page(*roles: str):
    """Decorate a console view: signed in (else the sign-in form), in one of the roles (else the 403 page)."""
    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            if g.get("staff") is None:
                return _to_login()
            if g.staff.role not in roles:
                raise Forbidden(f"This page is for: {', '.join(roles)}.")
            return view(*args, **kwargs)
        wrapper._fieldops_console_roles = roles
        return wrapper
    return decorator


# --- rendering ----------------------------------------------------------------------------------------------------

def flash_error(error: DomainError | str) -> None:
    """Show a refusal on the page being rendered: its registered text (err_<code>) if any, else its detail."""
    if isinstance(error, DomainError):
        key = f"err_{error.code}"
        message = t(key) if has_text(key) else error.detail
    else:
        message = error
    g.console_errors.append(message)


def render(template: str, status: int = 200, **context):
    """A console page: the template with the console's context (t, csrf_field, nav, the signed-in user)."""
    return render_template(template, **context), status


@bp.context_processor
def _context() -> dict:
    """What every console template may use."""
    staff = g.get("staff")
    return {"t": t, "csrf_field": csrf_field, "csrf_token": csrf_token, "lang": language(),
            "other_lang": "en" if language() == "zh" else "zh", "staff": staff,
            "nav": nav_for(staff.role if staff else None), "errors": g.get("console_errors", [])}


bp.add_app_template_filter(local_time, "local_time")
bp.add_app_template_filter(money, "money")
bp.add_app_template_filter(item_label, "item_label")


def _error_page(status: int, code: str, detail: str | None = None, headers: dict | None = None):
    """The console's error page (403 has its own title), in the page language; never a stack trace."""
    g.problem_code = code  # for the access line
    key = f"err_{code}"
    message = t(key) if has_text(key) else (detail or t("err_other"))
    template = "console/forbidden.html" if status == 403 else "console/error.html"
    return render_template(template, message=message, status=status), status, headers or {}


@bp.errorhandler(DomainError)
def _domain_error(error: DomainError):
    """A refusal no view showed itself, as a page."""
    apply_keep(error)
    return _error_page(error.status, error.code, error.detail, error.headers)


@bp.errorhandler(Exception)
def _unexpected(error: Exception):
    """Anything else, as a page: HTTP errors keep their status, a bug is logged and is a 500."""
    if isinstance(error, HTTPException):
        return _error_page(error.code or 500, http_error_code(error.code or 500))
    log.exception("unhandled error on the console")
    return _error_page(500, "other")


@bp.after_app_request
def _headers(response):
    """The console's CSP, nothing cached or framed, and the cookies this request set: on every answer under
    /console, a 404 no console route matched (answered before the blueprint is chosen) included."""
    if request.path != bp.url_prefix and not request.path.startswith(bp.url_prefix + "/"):
        return response
    response.headers["Content-Security-Policy"] = CONSOLE_CSP
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    secure = request.is_secure
    nonce = g.pop("new_login_nonce", None)
    if nonce:
        response.set_cookie(LOGIN_COOKIE, nonce, path=bp.url_prefix + "/", httponly=True, samesite="Lax",
                            secure=secure)
    lang = chosen_language()
    if lang:
        response.set_cookie(LANG_COOKIE, lang, path=bp.url_prefix + "/", max_age=365 * 24 * 3600, samesite="Lax",
                            httponly=True, secure=secure)
    return response


# --- sign-in and sign-out -----------------------------------------------------------------------------------------

@bp.get("/login")
def login():
    """The sign-in form (a signed-in browser goes on to the console)."""
    if g.staff is not None:
        return redirect(_safe_next(request.args.get("next")) or url_for("console.home"), code=303)
    return render("console/login.html", next=_safe_next(request.args.get("next")), username="")


@bp.post("/login")
def login_submit():
    """Check the password; on success a new session and its cookie, else the form again with one message."""
    username = request.form.get("username", "")[:64]
    password = request.form.get("password", "")
    target = _safe_next(request.form.get("next"))
    budgets = console_login_budgets(client_key("console-login"), username)
    try:
        check_failure_budget(budgets)  # only this address's failures count: the right password elsewhere works
        user = staff_service.verify_password(username=username, password=password)
        if user is None:
            # An unknown user and a wrong password get the same answer (and take as long).
            record_failure(budgets, "wrong console username or password")
            flash_error(t("login.failed"))
            return render("console/login.html", status=401, next=target, username=username)
    except TooManyRequests as exc:
        g.problem_code = exc.code
        flash_error(exc)
        return render("console/login.html", status=429, next=target, username=username)[0], 429, exc.headers
    staff_service.end_session(secret=request.cookies.get(SESSION_COOKIE))  # a new session id on every sign-in
    _, secret = staff_service.start_session(staff=user, address=request.remote_addr)
    response = redirect(target or url_for("console.home"), code=303)
    response.set_cookie(SESSION_COOKIE, secret, path=bp.url_prefix, httponly=True, samesite="Lax",
                        secure=request.is_secure)
    return response


@bp.post("/logout")
def logout():
    """Sign out: the session ends on the server, so its cookie no longer works anywhere."""
    staff_service.end_session(secret=request.cookies.get(SESSION_COOKIE))
    response = redirect(url_for("console.login"), code=303)
    response.delete_cookie(SESSION_COOKIE, path=bp.url_prefix, httponly=True, samesite="Lax",
                           secure=request.is_secure)
    return response
