"""The customer confirmation page: /c/<token>, server-rendered, outside the API and its OpenAPI spec."""
from datetime import timedelta
import hashlib
import hmac
import logging
import re
import secrets

import marshmallow as ma
from flask import Blueprint, current_app, g, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from schemas.complaints import ComplaintForm
from schemas.customer_links import ConsentForm, InstructionsForm, PageForm, RatingForm, SlotForm
from server import complaint_form
from server.auth import customer
from server.clock import local_zone
from server.errors import DomainError, ValidationFailed, apply_keep, http_error_code
from server.requests import body_limit
from server.services import complaints, customer_links, leaks, messages

log = logging.getLogger(__name__)

bp = Blueprint("customer_page", __name__, url_prefix="/c")

LANGS = ("zh", "en")
VISIT_COOKIE = "fo_visit"
_VISIT_NONCE = re.compile(r"[A-Za-z0-9_-]{22,64}")
PAGE_CSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; " \
       "base-uri 'none'"
_DONE = ("confirmed", "slot", "note", "consent", "withdrawn", "rated", "complaint")

TEXT = {
    "zh": {
        "title": "预约确认", "title_closed": "你的订单", "delivery": "派送", "pickup": "上门取件", "return": "退回",
        "pin": "收件码（请只告诉上门的快递员）", "recipient": "收件人", "sender": "寄件人",
        "address": "地址", "proposed": "快递员建议的时间", "confirmed": "已确认", "unconfirmed": "待确认",
        "missed": "快递员没有在这个时间上门，会和你重新约定时间。", "passed": "这个时间已经过去。",
        "confirm": "确认这个时间", "or_pick": "或选择其他时间", "pick": "选择",
        "instructions": "派送说明（如：放门卫室）", "instructions_pickup": "取件说明（如：在门卫室取）",
        "send": "提交说明", "closed": "这个订单已完成，无需再确认。",
        "done_confirmed": "已确认，快递员会按时上门。", "done_slot": "已改约，快递员会收到新的时间。",
        "done_note": "说明已提交，快递员会看到。", "expires": "链接有效期至", "switch": "English",
        "err_link_invalid": "这个链接无效。请检查短信里的完整链接。",
        "err_link_expired": "这个链接已过期。如需改约，请联系快递员或客服。",
        "err_link_revoked": "这个链接已被新的链接替代，请使用最新收到的链接。",
        "err_rate_limited": "操作太频繁了，请稍后再试。",
        "err_csrf_failed": "页面已过期，请重新打开链接后再提交。",
        "err_task_closed": "这个订单已完成，无法再修改。", "arrived": "快递员已到达，时间无法再修改。",
        "err_appointment_settled": "快递员已到达，时间无法再修改。",
        "err_appointment_missed": "快递员没有在这个时间上门，会和你重新约定时间。",
        "err_window_over": "这个时间已经过去，请选择其他时间。",
        "err_slot_past": "这个时间段已经开始，请选择更晚的时间。",
        "err_validation_failed": "提交的内容有误，请检查后重试。",
        "err_other": "出了点问题，请稍后再试。", "back": "返回",
        "alternate": "不在家时可以放在别处吗？", "alternate_help": "只有你同意，快递员才会把快递放在以下地点。",
        "place": "存放地点", "locker": "快递柜", "station": "驿站（代收点）", "neighbour": "邻居",
        "consent_note": "备注（如：哪位邻居）", "give_consent": "同意放在这里",
        "consent_given": "你已同意放在", "withdraw": "撤回同意",
        "done_consent": "已同意，快递员会看到。", "done_withdrawn": "已撤回，快递员只会当面交给你。",
        "err_wrong_task_kind": "这个订单不能放在别处。",
        "rate": "为这次服务打分", "score": "评分（1 最差，5 最好）", "comment": "意见或建议（可不填）",
        "send_rating": "提交评价", "rated": "你的评分", "thanks": "谢谢你的评价！",
        "done_rated": "评价已提交，谢谢！", "err_already_rated": "这个订单已经评价过了，谢谢你！",
        "err_not_rateable": "快递交接完成后才能评价。",
        "journey": "快件跟踪", "promise": "承诺送达时间",
        "promise_kept": "已按承诺时间送达", "promise_missed": "晚于承诺时间送达，非常抱歉",
        "promise_breached": "已超过承诺时间，我们正在加急处理，非常抱歉", "no_scans": "暂无跟踪信息。",
        "ev_arrived_depot": "快件已到达派送网点", "ev_out_for_delivery": "快递员正在派送",
        "ev_handed_over": "快件已签收", "ev_returned": "快件已退回", "ev_exception": "快件异常，我们正在处理",
    },
    "en": {
        "title": "Confirm your appointment", "title_closed": "Your order", "delivery": "Delivery", "pickup": "Pickup",
        "return": "Return", "pin": "Handover PIN (give it only to your courier at the door)",
        "recipient": "Recipient", "sender": "Sender", "address": "Address", "proposed": "Time proposed by your courier",
        "confirmed": "Confirmed", "unconfirmed": "Not yet confirmed", "confirm": "Confirm this time",
        "missed": "Your courier did not come at this time and will agree a new one with you.",
        "passed": "This time has passed.",
        "or_pick": "Or pick another time", "pick": "Pick", "instructions": "Delivery instructions "
        "(e.g. leave it at the gatehouse)", "instructions_pickup": "Pickup instructions "
        "(e.g. collect it at the gatehouse)", "send": "Send instructions",
        "closed": "This order is finished; nothing to confirm.",
        "done_confirmed": "Confirmed: your courier will come at this time.",
        "done_slot": "Changed: your courier will get the new time.",
        "done_note": "Instructions sent: your courier will see them.", "expires": "This link works until",
        "switch": "中文",
        "err_link_invalid": "This link is not valid. Please check you have the whole link from the message.",
        "err_link_expired": "This link has expired. To change the time, please call your courier or us.",
        "err_link_revoked": "This link was replaced by a newer one; please use the latest link you received.",
        "err_rate_limited": "Too many requests; please try again in a few minutes.",
        "err_csrf_failed": "This page has expired; please open the link again and resubmit.",
        "err_task_closed": "This order is finished and can no longer be changed.",
        "arrived": "Your courier has arrived; the time can no longer be changed.",
        "err_appointment_settled": "Your courier has arrived; the time can no longer be changed.",
        "err_appointment_missed": "Your courier did not come at this time and will agree a new one with you.",
        "err_window_over": "This time has passed; please pick another one.",
        "err_slot_past": "That time has already begun; please pick a later one.",
        "err_validation_failed": "Something in the form was not right; please check it and try again.",
        "err_other": "Something went wrong; please try again later.", "back": "Back",
        "alternate": "Not at home? Leave it elsewhere", "alternate_help": "Your courier leaves the parcel at one "
        "of these places only with your consent.", "place": "Place", "locker": "Parcel locker",
        "station": "Parcel station", "neighbour": "A neighbour", "consent_note": "Note (e.g. which neighbour)",
        "give_consent": "I agree to this place", "consent_given": "You agreed to", "withdraw": "Withdraw consent",
        "done_consent": "Consent given: your courier will see it.",
        "done_withdrawn": "Consent withdrawn: your courier will hand the parcel to you in person.",
        "err_wrong_task_kind": "This order cannot be left elsewhere.",
        "rate": "Rate this service", "score": "Score (1 worst, 5 best)", "comment": "Comments (optional)",
        "send_rating": "Send rating", "rated": "Your rating", "thanks": "Thank you for your rating!",
        "done_rated": "Rating sent: thank you!", "err_already_rated": "This order is already rated: thank you!",
        "err_not_rateable": "You can rate the service once the parcel is handed over.",
        "journey": "Tracking", "promise": "Promised delivery",
        "promise_kept": "delivered as promised", "promise_missed": "delivered late, we are sorry",
        "promise_breached": "past the promised time: we are hurrying it, and we are sorry", "no_scans": "No tracking events yet.",
        "ev_arrived_depot": "Arrived at the delivery depot", "ev_out_for_delivery": "Out for delivery",
        "ev_handed_over": "Delivered", "ev_returned": "Returned", "ev_exception": "A problem with the parcel; we are "
        "dealing with it",
    },
}

for _lang in LANGS:
    TEXT[_lang].update(complaint_form.TEXT[_lang])


def page_language() -> str:
    """The page language: ?lang= (or the form's) when given, else the browser's preference, else Chinese."""
    try:
        chosen = request.values.get("lang")
    except RequestEntityTooLarge:  # a post past its body limit: its form is never read (nor is it here)
        chosen = request.args.get("lang")
    if chosen in LANGS:
        return chosen
    return request.accept_languages.best_match(LANGS, default="zh")


def _window(start, end, lang: str) -> str:
    """A window in depot-local time, as people write it."""
    zone = local_zone()
    start, end = start.astimezone(zone), end.astimezone(zone)
    day = f"{start.month}月{start.day}日" if lang == "zh" else start.strftime("%a %d %b")
    return f"{day} {start:%H:%M}–{end:%H:%M}"


def _moment(at, lang: str) -> str:
    """A time in depot-local time, as people write it."""
    local = at.astimezone(local_zone())
    return f"{local.month}月{local.day}日 {local:%H:%M}" if lang == "zh" else local.strftime("%a %d %b %H:%M")


def _promised(at, lang: str) -> str:
    """The promised time as people say it: a promise due at a depot midnight ("by the end of day N") is the end of
    the day before ("12月8日 24:00前", "by the end of Tue 08 Dec"), not 00:00 of the next one."""
    local = at.astimezone(local_zone())
    if (local.hour, local.minute, local.second) != (0, 0, 0):
        return f"{_moment(at, lang)}前" if lang == "zh" else f"by {_moment(at, lang)}"
    day = local - timedelta(days=1)
    return f"{day.month}月{day.day}日 24:00前" if lang == "zh" else day.strftime("by the end of %a %d %b")


def _visit_nonce() -> str:
    """This browser's visit nonce (double-submit CSRF): the cookie's, or a new one set on the answer."""
    nonce = request.cookies.get(VISIT_COOKIE, "")
    if not _VISIT_NONCE.fullmatch(nonce):
        nonce = g.new_visit_nonce = secrets.token_urlsafe(24)
    return nonce


def _csrf(link_id: str, nonce: str) -> str:
    """The form token: an HMAC of the link and the visit nonce, so a token fits one link in one browser."""
    return hmac.new(current_app.config["SECRET_KEY"].encode(), f"customer-csrf:{link_id}:{nonce}".encode(),
                    hashlib.sha256).hexdigest()


class CsrfFailed(DomainError):
    """A form post without the token of this link and this browser's visit."""

    status, code, title = 400, "csrf_failed", "Bad request"


def _form(schema: type[PageForm], link) -> dict:
    """The post's fields, parsed by the schema, once its CSRF token matches the visit cookie."""
    nonce = request.cookies.get(VISIT_COOKIE, "")
    submitted = request.form.get("csrf", "")
    if not _VISIT_NONCE.fullmatch(nonce) or not hmac.compare_digest(submitted, _csrf(link.id, nonce)):
        raise CsrfFailed("The form token does not match this visit.")
    try:
        return schema().load(request.form.to_dict())
    except ma.ValidationError as exc:
        raise ValidationFailed("The form is not valid.", fields=exc.messages) from exc


def _back(token: str, done: str):
    """Post/redirect/get: the page again, saying what was done."""
    return redirect(url_for(".show", token=token, lang=page_language(), done=done), code=303)


@bp.get("/<token>")
def show(token):
    """The page: who and where (masked), the proposed window, the offered slots, an instructions box."""
    link = customer_links.open_link(token=token)
    view = customer_links.page(link=link)
    lang = page_language()
    done = request.args.get("done")
    body = render_template(
        "customer/page.html", t=TEXT[lang], lang=lang, token=token, view=view,
        title=TEXT[lang]["title_closed" if view["closed"] else "title"],
        csrf=_csrf(link.id, _visit_nonce()), done=done if done in _DONE else None,
        proposed=_window(view["proposed"]["start"], view["proposed"]["end"], lang),
        slots=[(s["index"], _window(s["start"], s["end"], lang)) for s in view["slots"]],
        expires=view["expires_at"].astimezone(local_zone()).strftime("%Y-%m-%d %H:%M"),
        journey=[(item["parcel_no"], item["event"], _moment(item["at"], lang)) for item in reversed(view["journey"])],
        promised=_promised(view["promised_at"], lang) if view["promised_at"] else None,
        promise_state=view["promise_state"],
        other="en" if lang == "zh" else "zh", **complaint_form.view(link.task_id, url_for(".complain", token=token)))
    # After the page is built, since the note commits on its own; ProxyFix has put the client's address in
    # remote_addr when behind trusted proxies (FIELDOPS_PROXY_HOPS).
    leaks.note_link_use(link_kind="customer_link", link_id=link.id, address=request.remote_addr, task_id=link.task_id)
    if request.args.get("lang") in LANGS:  # the customer's own choice (the switch): their messages follow it
        messages.remember_language(task_id=link.task_id, language=request.args["lang"])
    return body


@bp.post("/<token>/confirm")
def confirm(token):
    """The customer agrees to the proposed window."""
    link = customer_links.open_link(token=token)
    _form(PageForm, link)
    customer_links.confirm(link=link)
    return _back(token, "confirmed")


@bp.post("/<token>/slot")
def choose_slot(token):
    """The customer picks one of the offered slots."""
    link = customer_links.open_link(token=token)
    customer_links.choose_slot(link=link, index=_form(SlotForm, link)["slot"])
    return _back(token, "slot")


@bp.post("/<token>/instructions")
def instructions(token):
    """The customer leaves delivery instructions for the courier."""
    link = customer_links.open_link(token=token)
    customer_links.leave_instructions(link=link, text=_form(InstructionsForm, link)["text"])
    return _back(token, "note")


@bp.post("/<token>/consent")
def give_consent(token):
    """The customer consents to delivery at a locker, station or neighbour."""
    link = customer_links.open_link(token=token)
    form = _form(ConsentForm, link)
    customer_links.consent(link=link, place=form["place"], note=form["note"])
    return _back(token, "consent")


@bp.post("/<token>/consent/withdraw")
def withdraw_consent(token):
    """The customer takes their consent back, before delivery."""
    link = customer_links.open_link(token=token)
    _form(PageForm, link)
    customer_links.withdraw_consent(link=link)
    return _back(token, "withdrawn")


@bp.post("/<token>/rating")
def rate(token):
    """The customer rates the handover, once."""
    link = customer_links.open_link(token=token)
    form = _form(RatingForm, link)
    customer_links.rate(link=link, score=form["score"], comment=form["comment"])
    return _back(token, "rated")


@bp.post("/<token>/complaint")
@body_limit("COMPLAINT_FORM_BODY_LIMIT")
def complain(token):
    """The customer complains (about the courier, the depot, the hotline or the product), with a photo or not."""
    link = customer_links.open_link(token=token)
    form = _form(ComplaintForm, link)
    complaint = complaints.file_for_customer(
        actor=customer(link.id), task_id=link.task_id, channel="customer_page", category=form["category"],
        subject=form["subject"], text=form["text"], photo=complaint_form.photo())
    return redirect(url_for(".show", token=token, lang=page_language(), done="complaint", ref=complaint.reference),
                    code=303)


def _error_page(status: int, code: str, headers: dict | None = None):
    """A friendly page in the visitor's language; never a stack trace."""
    g.problem_code = code  # for the access line
    lang = page_language()
    text = TEXT[lang]
    body = render_template("customer/error.html", t=text, lang=lang,
                           message=text.get(f"err_{code}", text["err_other"]))
    return body, status, headers or {}


@bp.errorhandler(DomainError)
def _domain_error(error: DomainError):
    """A refused link or post, as a page (what the refusal keeps is kept, as in the API)."""
    apply_keep(error)
    return _error_page(error.status, error.code, error.headers)


@bp.errorhandler(Exception)
def _unexpected(error: Exception):
    """Anything else, as a page: HTTP errors keep their status, a bug is logged and is a 500."""
    if isinstance(error, HTTPException):
        return _error_page(error.code or 500, http_error_code(error.code or 500))
    log.exception("unhandled error on the customer page")
    return _error_page(500, "other")


@bp.after_request
def _headers(response):
    """A strict CSP, nothing cached or referred, and the visit cookie for CSRF when it is new."""
    response.headers["Content-Security-Policy"] = PAGE_CSP
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    nonce = g.pop("new_visit_nonce", None)
    if nonce:
        response.set_cookie(VISIT_COOKIE, nonce, path=bp.url_prefix + "/", httponly=True, samesite="Strict",
                            secure=request.is_secure)
    return response
